"""One boto3 transfer for s3_native.sh: put or get FILE as KEY.

    s3_native.py put|get default|8x8 FILE KEY

default: boto3's default TransferConfig (8 MiB parts, 10 threads);
8x8: 8 MiB parts, 8 threads. Endpoint, credentials, region and bucket from
AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and
FERRY_TEST_S3_BUCKET.
"""

import os
import sys

import boto3
from boto3.s3.transfer import TransferConfig


def main(argv):
    if len(argv) != 5 or argv[1] not in ("put", "get") or argv[2] not in ("default", "8x8"):
        raise SystemExit(__doc__)
    op, variant, path, key = argv[1:]
    if variant == "default":
        config = TransferConfig()
    else:
        config = TransferConfig(
            multipart_threshold=8 << 20, multipart_chunksize=8 << 20, max_concurrency=8
        )
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    bucket = os.environ["FERRY_TEST_S3_BUCKET"]
    if op == "put":
        s3.upload_file(path, bucket, key, Config=config)
    else:
        s3.download_file(bucket, key, path, Config=config)


if __name__ == "__main__":
    main(sys.argv)
