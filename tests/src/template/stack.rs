//! The transformed template evaluated for one set of parameters, as
//! CloudFormation would: conditions decided, resources whose condition is
//! false dropped, and every intrinsic function (`Ref`, `Fn::GetAtt`,
//! `Fn::Sub`, `Fn::If`, `Fn::Join`, …) replaced by its value. What a
//! resource's `Ref` or attribute is comes from [`Physical`]: made up for
//! most, the emulators' real names for the table and the queues.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

pub const REGION: &str = "us-east-1";
/// moto's account, so the queue ARNs it reports are the ones evaluated here.
pub const ACCOUNT: &str = "123456789012";

/// A resource's `Ref` value and attributes.
#[derive(Debug, Clone, Default)]
pub struct Physical {
    pub reference: String,
    pub attributes: BTreeMap<String, String>,
}

impl Physical {
    pub fn new(reference: impl Into<String>) -> Self {
        Self { reference: reference.into(), attributes: BTreeMap::new() }
    }

    pub fn with(mut self, attribute: &str, value: impl Into<String>) -> Self {
        self.attributes.insert(attribute.to_owned(), value.into());
        self
    }

    /// A DynamoDB table as CloudFormation names it.
    pub fn table(name: &str) -> Self {
        Self::new(name).with("Arn", format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"))
    }

    /// An SQS queue: its URL is its `Ref`.
    pub fn queue(url: &str) -> Self {
        let name = url.rsplit('/').next().unwrap_or(url);
        Self::new(url).with("Arn", format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")).with("QueueName", name)
    }
}

/// One evaluated resource.
#[derive(Debug, Clone)]
pub struct Resource {
    pub logical_id: String,
    pub kind: String,
    pub properties: Value,
    pub metadata: Value,
    pub deletion_policy: Option<String>,
}

#[derive(Debug)]
pub struct Stack {
    pub name: String,
    template: Value,
    parameters: BTreeMap<String, Value>,
    conditions: BTreeMap<String, bool>,
    physical: BTreeMap<String, Physical>,
}

impl Stack {
    /// `template` (already transformed) deployed as `name` with `overrides`
    /// on the parameters' defaults, and `physical` for the resources whose
    /// names matter.
    pub fn new(template: &Value, name: &str, overrides: &[(&str, &str)], physical: &[(&str, Physical)]) -> Self {
        let mut parameters = BTreeMap::new();
        for (parameter, declaration) in template["Parameters"].as_object().into_iter().flatten() {
            let value = overrides
                .iter()
                .find(|(p, _)| p == parameter)
                .map(|(_, v)| (*v).to_owned())
                .or_else(|| declaration.get("Default").map(scalar))
                .unwrap_or_else(|| panic!("parameter {parameter} has no default and no value"));
            let value = if declaration["Type"] == "CommaDelimitedList" {
                Value::Array(value.split(',').map(|v| json!(v.trim())).collect())
            } else {
                Value::String(value)
            };
            parameters.insert(parameter.clone(), value);
        }
        for (parameter, _) in overrides {
            assert!(parameters.contains_key(*parameter), "the template has no parameter {parameter}");
        }
        let mut stack = Self {
            name: name.to_owned(),
            template: template.clone(),
            parameters,
            conditions: BTreeMap::new(),
            physical: physical.iter().map(|(id, p)| ((*id).to_owned(), p.clone())).collect(),
        };
        let declared: Vec<String> =
            template["Conditions"].as_object().into_iter().flatten().map(|(k, _)| k.clone()).collect();
        for condition in declared {
            let value = stack.condition(&condition);
            stack.conditions.insert(condition, value);
        }
        stack
    }

    pub fn parameter(&self, name: &str) -> String {
        scalar(&self.parameters[name])
    }

    /// Every resource whose condition holds, evaluated.
    pub fn resources(&self) -> Vec<Resource> {
        let mut resources = Vec::new();
        for (logical_id, resource) in self.template["Resources"].as_object().into_iter().flatten() {
            if let Some(condition) = resource.get("Condition").and_then(Value::as_str)
                && !self.condition(condition)
            {
                continue;
            }
            resources.push(Resource {
                logical_id: logical_id.clone(),
                kind: resource["Type"].as_str().unwrap_or_default().to_owned(),
                properties: self.eval(&resource["Properties"]).unwrap_or(Value::Null),
                metadata: resource.get("Metadata").cloned().unwrap_or(Value::Null),
                deletion_policy: resource.get("DeletionPolicy").and_then(Value::as_str).map(str::to_owned),
            });
        }
        resources
    }

    pub fn resources_of(&self, kind: &str) -> Vec<Resource> {
        self.resources().into_iter().filter(|r| r.kind == kind).collect()
    }

    pub fn resource(&self, logical_id: &str) -> Option<Resource> {
        self.resources().into_iter().find(|r| r.logical_id == logical_id)
    }

    /// What `Ref` to a resource or parameter gives.
    pub fn reference(&self, name: &str) -> Value {
        match name {
            "AWS::StackName" => return json!(self.name),
            "AWS::Region" => return json!(REGION),
            "AWS::AccountId" => return json!(ACCOUNT),
            "AWS::Partition" => return json!("aws"),
            "AWS::URLSuffix" => return json!("amazonaws.com"),
            "AWS::StackId" => return json!(format!("arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{}/1", self.name)),
            _ => {}
        }
        if let Some(value) = self.parameters.get(name) {
            return value.clone();
        }
        json!(self.physical(name).reference)
    }

    /// What `Fn::GetAtt` of a resource gives.
    pub fn attribute(&self, resource: &str, attribute: &str) -> String {
        let physical = self.physical(resource);
        physical.attributes.get(attribute).cloned().unwrap_or_else(|| panic!("no attribute {attribute} of {resource}"))
    }

    fn physical(&self, logical_id: &str) -> Physical {
        if let Some(physical) = self.physical.get(logical_id) {
            return physical.clone();
        }
        let kind = self.template["Resources"][logical_id]["Type"]
            .as_str()
            .unwrap_or_else(|| panic!("no resource {logical_id}"));
        let stack = &self.name;
        let name = format!("{stack}-{logical_id}");
        match kind {
            "AWS::Lambda::Function" => {
                Physical::new(&name).with("Arn", format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"))
            }
            "AWS::IAM::Role" => Physical::new(&name).with("Arn", format!("arn:aws:iam::{ACCOUNT}:role/{name}")),
            "AWS::CloudWatch::Alarm" => {
                Physical::new(&name).with("Arn", format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"))
            }
            "AWS::SNS::Topic" => {
                let arn = format!("arn:aws:sns:{REGION}:{ACCOUNT}:{name}");
                Physical::new(&arn).with("TopicArn", &arn).with("TopicName", &name)
            }
            "AWS::KMS::Key" => Physical::new(format!("key-{logical_id}"))
                .with("Arn", format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/key-{logical_id}")),
            "AWS::DynamoDB::Table" => Physical::table(&name),
            "AWS::SQS::Queue" => Physical::queue(&format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}")),
            "AWS::ApiGatewayV2::Api" => Physical::new(format!("api{}", logical_id.len())),
            "AWS::Logs::LogGroup" => {
                Physical::new(&name).with("Arn", format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}"))
            }
            _ => Physical::new(format!("{logical_id}-physical")).with("Arn", format!("arn:aws:{logical_id}")),
        }
    }

    pub fn condition(&self, name: &str) -> bool {
        if let Some(value) = self.conditions.get(name) {
            return *value;
        }
        let declaration = &self.template["Conditions"][name];
        assert!(!declaration.is_null(), "no condition {name}");
        self.truth(declaration)
    }

    fn truth(&self, value: &Value) -> bool {
        let (function, argument) = single(value).unwrap_or_else(|| panic!("not a condition: {value}"));
        match function {
            "Condition" => self.condition(argument.as_str().expect("a condition name")),
            "Fn::Equals" => {
                let pair = argument.as_array().expect("two values");
                self.eval(&pair[0]) == self.eval(&pair[1])
            }
            "Fn::Not" => !self.truth(&argument[0]),
            "Fn::And" => argument.as_array().expect("conditions").iter().all(|c| self.truth(c)),
            "Fn::Or" => argument.as_array().expect("conditions").iter().any(|c| self.truth(c)),
            other => panic!("{other} is not a condition function"),
        }
    }

    /// `value` with every intrinsic function replaced; `None` is
    /// `AWS::NoValue` (the property or element is left out).
    pub fn eval(&self, value: &Value) -> Option<Value> {
        match value {
            Value::Array(items) => Some(Value::Array(items.iter().filter_map(|v| self.eval(v)).collect())),
            Value::Object(map) => {
                if let Some((function, argument)) = single(value).filter(|(f, _)| *f == "Ref" || f.starts_with("Fn::"))
                {
                    return self.function(function, argument);
                }
                let mut evaluated = Map::new();
                for (key, v) in map {
                    if let Some(v) = self.eval(v) {
                        evaluated.insert(key.clone(), v);
                    }
                }
                Some(Value::Object(evaluated))
            }
            other => Some(other.clone()),
        }
    }

    fn function(&self, function: &str, argument: &Value) -> Option<Value> {
        Some(match function {
            "Ref" => {
                let name = argument.as_str().expect("a name");
                if name == "AWS::NoValue" {
                    return None;
                }
                self.reference(name)
            }
            "Fn::GetAtt" => {
                let (resource, attribute) = match argument {
                    Value::Array(parts) => (
                        parts[0].as_str().expect("a resource").to_owned(),
                        scalar(&self.eval(&parts[1]).expect("an attribute")),
                    ),
                    Value::String(dotted) => {
                        let (r, a) = dotted.split_once('.').expect("Resource.Attribute");
                        (r.to_owned(), a.to_owned())
                    }
                    other => panic!("Fn::GetAtt of {other}"),
                };
                json!(self.attribute(&resource, &attribute))
            }
            "Fn::Sub" => {
                let (text, variables) = match argument {
                    Value::String(text) => (text.clone(), Map::new()),
                    Value::Array(parts) => (
                        parts[0].as_str().expect("a string").to_owned(),
                        self.eval(&parts[1]).and_then(|v| v.as_object().cloned()).unwrap_or_default(),
                    ),
                    other => panic!("Fn::Sub of {other}"),
                };
                json!(self.substitute(&text, &variables))
            }
            "Fn::If" => {
                let parts = argument.as_array().expect("[condition, then, else]");
                let branch = if self.condition(parts[0].as_str().expect("a condition name")) { 1 } else { 2 };
                return self.eval(&parts[branch]);
            }
            "Fn::Join" => {
                let parts = argument.as_array().expect("[delimiter, values]");
                let values = self.eval(&parts[1]).expect("values");
                let values: Vec<String> = values.as_array().expect("a list").iter().map(scalar).collect();
                json!(values.join(parts[0].as_str().expect("a delimiter")))
            }
            "Fn::Select" => {
                let parts = argument.as_array().expect("[index, list]");
                let index: usize = scalar(&self.eval(&parts[0]).expect("an index")).parse().expect("a number");
                self.eval(&parts[1]).expect("a list")[index].clone()
            }
            "Fn::Split" => {
                let parts = argument.as_array().expect("[delimiter, text]");
                let text = scalar(&self.eval(&parts[1]).expect("text"));
                json!(text.split(parts[0].as_str().expect("a delimiter")).collect::<Vec<_>>())
            }
            "Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or" => {
                json!(self.truth(&json!({ function: argument })))
            }
            other => panic!("the evaluator does not know {other}"),
        })
    }

    fn substitute(&self, text: &str, variables: &Map<String, Value>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').expect("a closed ${}");
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = variables.get(name) {
                out.push_str(&scalar(value));
            } else if let Some((resource, attribute)) = name.split_once('.')
                && !name.starts_with("AWS::")
            {
                out.push_str(&self.attribute(resource, attribute));
            } else {
                out.push_str(&scalar(&self.reference(name)));
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// `{"Fn::X": argument}`: the one key of a one-key object.
fn single(value: &Value) -> Option<(&str, &Value)> {
    let map = value.as_object()?;
    if map.len() != 1 {
        return None;
    }
    map.iter().next().map(|(k, v)| (k.as_str(), v))
}

/// A scalar as CloudFormation passes it: a string, or a number as text.
pub fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}
