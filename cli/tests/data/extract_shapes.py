#!/usr/bin/env python3
"""Writes service-shapes.json: the output members of the operations the CLI prints, and of the
structures inside them, extracted from the service model (kms-service-2.json).

The CLI's tests check every `--json` response against this extract, so they do not need the model
itself. Regenerate after adding an operation or structure to the lists below:

    python3 cli/tests/data/extract_shapes.py [PATH/TO/kms-service-2.json]

(default: the copy vendored in the repository, engine/model/kms-service-2.json). Operations
without an output shape get an empty list: their response is `{}`.
"""

import json
import os
import sys

OPERATIONS = [
    "CreateKey",
    "DescribeKey",
    "ListKeys",
    "ListAliases",
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateRandom",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "RotateKeyOnDemand",
    "GetKeyRotationStatus",
    "ListResourceTags",
    "ListKeyRotations",
    # Asymmetric, HMAC and key agreement (issue 4).
    "Sign",
    "Verify",
    "GetPublicKey",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    # Policies, grants and usage (issue 5).
    "GetKeyPolicy",
    "PutKeyPolicy",
    "ListKeyPolicies",
    "CreateGrant",
    "ListGrants",
    "ListRetirableGrants",
    "RetireGrant",
    "RevokeGrant",
    "GetKeyLastUsage",
]

STRUCTURES = [
    "KeyMetadata",
    "KeyListEntry",
    "AliasListEntry",
    "RotationsListEntry",
    "Tag",
    "GrantListEntry",
    "GrantConstraints",
    "KeyLastUsageData",
]

SOURCE = (
    "extracted from the service model (kms-service-2.json): output members of the operations "
    "the CLI prints, and of the structures inside them"
)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(here, "..", "..", "..", "engine", "model", "kms-service-2.json")
    model_path = sys.argv[1] if len(sys.argv) > 1 else default
    with open(model_path) as f:
        model = json.load(f)
    shapes = model["shapes"]

    def members(shape):
        return list(shapes[shape]["members"])

    operations = {}
    for name in OPERATIONS:
        output = model["operations"][name].get("output")
        operations[name] = members(output["shape"]) if output else []
    structures = {name: members(name) for name in STRUCTURES}
    out = {"_source": SOURCE, "operations": operations, "structures": structures}
    with open(os.path.join(here, "service-shapes.json"), "w") as f:
        f.write(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
