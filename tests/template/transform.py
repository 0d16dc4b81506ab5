"""Prints a SAM template transformed by SAM's own translator, as JSON.

    transform.py TEMPLATE

What `sam validate` and `sam deploy` do to the template before CloudFormation
sees it, offline: the local CodeUri becomes a placeholder S3 URI (as `sam
validate` does), and each function keeps its Metadata so the contract test
can tell which binary it runs. The test then evaluates the result for a set
of parameters and holds each function's environment and role to its code.
"""

import json
import sys

import boto3
from samcli.yamlhelper import yaml_parse
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator


def main(path):
    with open(path, encoding="utf-8") as template_file:
        template = yaml_parse(template_file.read())
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(properties.get("CodeUri"), str):
            properties["CodeUri"] = "s3://placeholder-bucket/placeholder-key"
    # A region for the pseudo parameters; nothing is called.
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    translator = Translator(managed_policy_map=None, sam_parser=Parser(), plugins=[], boto_session=session)
    transformed = translator.translate(
        sam_template=template,
        parameter_values={},
        passthrough_metadata=True,
        # Every policy in the template is inline or an ARN: nothing to look up.
        get_managed_policy_map=lambda: {},
    )
    json.dump(transformed, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
