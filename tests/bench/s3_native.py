"""One boto3 transfer for s3_native.sh: put or get FILE as KEY, or a tree.

    s3_native.py put|get default|8x8 FILE KEY
    s3_native.py tree-put DIR PREFIX     every file under DIR as PREFIX/REL,
                                         32 threads, one PUT each
    s3_native.py count PREFIX            print how many keys PREFIX holds
    s3_native.py delete-prefix PREFIX    delete every key under PREFIX

default: boto3's default TransferConfig (8 MiB parts, 10 threads);
8x8: 8 MiB parts, 8 threads. Endpoint, credentials, region and bucket from
AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and
FERRY_TEST_S3_BUCKET.
"""

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

TREE_THREADS = 32


def client(pool=10):
    return boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        config=Config(max_pool_connections=pool),
    )


def keys(s3, bucket, prefix):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            yield o["Key"]


def tree_put(s3, bucket, root, prefix):
    files = []
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            files.append((p, prefix + "/" + os.path.relpath(p, root)))

    def one(f):
        with open(f[0], "rb") as fh:
            s3.put_object(Bucket=bucket, Key=f[1], Body=fh.read())

    with ThreadPoolExecutor(TREE_THREADS) as pool:
        for _ in pool.map(one, files):
            pass


def main(argv):
    bucket = os.environ["FERRY_TEST_S3_BUCKET"]
    if len(argv) == 4 and argv[1] == "tree-put":
        tree_put(client(TREE_THREADS), bucket, argv[2], argv[3])
        return
    if len(argv) == 3 and argv[1] == "count":
        print(sum(1 for _ in keys(client(), bucket, argv[2])))
        return
    if len(argv) == 3 and argv[1] == "delete-prefix":
        s3 = client()
        batch = []
        for k in list(keys(s3, bucket, argv[2])):
            batch.append({"Key": k})
            if len(batch) == 1000:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
                batch = []
        if batch:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        return
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
    if op == "put":
        s3.upload_file(path, bucket, key, Config=config)
    else:
        s3.download_file(bucket, key, path, Config=config)


if __name__ == "__main__":
    main(sys.argv)
