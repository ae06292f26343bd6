"""Prints, as JSON, the HTTP requests botocore's KMS client would send (two identical Encrypt
calls), signed with SigV4 by botocore itself, without sending them.

Arguments: access key id, secret access key, region, endpoint URL. Used by
server/tests/botocore_sigv4.rs.
"""

import base64
import contextlib
import json
import sys

import botocore.session
from botocore.awsrequest import AWSResponse

akid, secret, region, endpoint = sys.argv[1:5]
session = botocore.session.get_session()
client = session.create_client(
    "kms",
    region_name=region,
    endpoint_url=endpoint,
    aws_access_key_id=akid,
    aws_secret_access_key=secret,
)
captured = []


class Raw:
    def stream(self, **kw):
        yield b""


def before_send(request, **kwargs):
    captured.append(
        {
            "method": request.method,
            "url": request.url,
            "headers": [
                [k, v.decode() if isinstance(v, bytes) else v] for k, v in request.headers.items()
            ],
            "body": base64.b64encode(request.body or b"").decode(),
        }
    )
    return AWSResponse(request.url, 200, {}, Raw())


client.meta.events.register("before-send.kms", before_send)
for _ in range(int(sys.argv[5]) if len(sys.argv) > 5 else 2):
    with contextlib.suppress(Exception):
        client.encrypt(KeyId="alias/a", Plaintext=b"hello")
print(json.dumps(captured))
