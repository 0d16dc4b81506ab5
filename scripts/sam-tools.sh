# shellcheck shell=bash
# Sourced by scripts/sam.sh and scripts/test.sh: the pinned PyPI packages of
# the SAM venv. The translator is the one this sam-cli release uses; the
# template contract test transforms the template with it, as sam does.
# shellcheck disable=SC2034  # read by the scripts that source this
SAM_SPECS=('aws-sam-cli==1.170.0' 'aws-sam-translator==1.115.0' 'cargo-lambda==1.9.2' 'ziglang==0.17.1')
