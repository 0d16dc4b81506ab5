//! A function's role, read from the evaluated template, and what it
//! allows: an action on a resource ARN, with `dynamodb:LeadingKeys`
//! conditions. Wildcards as IAM reads them (`*`, `?`).

use serde_json::Value;

/// What one AWS call needs from IAM.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Need {
    pub action: String,
    pub resource: String,
    /// The partition key a DynamoDB item call touches.
    pub leading_key: Option<String>,
}

/// One `Allow` statement.
#[derive(Debug, Clone)]
pub struct Grant {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    /// `ForAllValues:StringLike` / `StringEquals` on `dynamodb:LeadingKeys`.
    pub leading_keys: Option<Vec<String>>,
}

impl Grant {
    pub fn allows(&self, need: &Need) -> bool {
        self.actions.iter().any(|a| matches(a, &need.action))
            && self.resources.iter().any(|r| matches(r, &need.resource))
            && match (&self.leading_keys, &need.leading_key) {
                (None, _) => true,
                (Some(patterns), Some(key)) => patterns.iter().any(|p| matches(p, key)),
                // IAM cannot tell the item: a condition on it does not hold.
                (Some(_), None) => false,
            }
    }
}

/// The inline statements of a role (`AWS::IAM::Role` properties,
/// evaluated). Managed policies (logs, X-Ray) are not read: the contract
/// is about DynamoDB, SQS, Secrets Manager and SSM.
pub fn grants(role: &Value) -> Vec<Grant> {
    let mut grants = Vec::new();
    for policy in role["Policies"].as_array().into_iter().flatten() {
        for statement in list(&policy["PolicyDocument"]["Statement"]) {
            assert_eq!(statement["Effect"], "Allow", "only Allow statements: {statement}");
            let mut leading_keys = None;
            if let Some(condition) = statement.get("Condition") {
                for (operator, tests) in condition.as_object().expect("a condition") {
                    assert!(
                        ["ForAllValues:StringLike", "ForAllValues:StringEquals"].contains(&operator.as_str()),
                        "condition {operator} is not read by this test"
                    );
                    let keys = list(&tests["dynamodb:LeadingKeys"])
                        .iter()
                        .map(|k| k.as_str().expect("a key").to_owned())
                        .collect();
                    leading_keys = Some(keys);
                }
            }
            grants.push(Grant {
                actions: list(&statement["Action"]).iter().map(|a| a.as_str().expect("an action").to_owned()).collect(),
                resources: list(&statement["Resource"])
                    .iter()
                    .map(|r| r.as_str().expect("an ARN").to_owned())
                    .collect(),
                leading_keys,
            });
        }
    }
    grants
}

fn list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

/// IAM's wildcard match, case-sensitive (actions compare case-insensitively).
pub fn matches(pattern: &str, value: &str) -> bool {
    fn go(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    if pattern.contains(':') && !pattern.starts_with("arn:") {
        return go(pattern.to_ascii_lowercase().as_bytes(), value.to_ascii_lowercase().as_bytes());
    }
    go(pattern.as_bytes(), value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(matches("dynamodb:*", "dynamodb:PutItem"));
        assert!(matches("lock#*", "lock#register-stripe"));
        assert!(!matches("lock#*", "account#stripe#a"));
        assert!(matches(
            "arn:aws:dynamodb:*:*:table/t/index/*",
            "arn:aws:dynamodb:us-east-1:1:table/t/index/by_account"
        ));
        assert!(!matches("arn:aws:dynamodb:us-east-1:1:table/t", "arn:aws:dynamodb:us-east-1:1:table/t/index/x"));
    }
}
