"""S3 chores for seaweedfs.sh: readiness, bucket listings, pending uploads.

Reads AWS_ENDPOINT_URL, FERRY_TEST_S3_ENDPOINT2 (optional),
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, FERRY_TEST_S3_BUCKET.

    seaweedfs_s3.py ready mini|cluster   create the bucket, wait until every
                                         gateway lists it and takes a write
    seaweedfs_s3.py objects [PREFIX]     print the keys in the bucket
    seaweedfs_s3.py pending [PREFIX]     print `key upload-id initiated` of
                                         each unfinished multipart upload
    seaweedfs_s3.py check put|get|clean  20 MiB multipart objects under
                                         .ferry-check/: put one through each
                                         gateway and read it through all;
                                         read them all; delete them
"""

import hashlib
import io
import os
import sys
import time

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError


def client(endpoint):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        config=Config(
            retries={"max_attempts": 1},
            connect_timeout=2,
            read_timeout=30,
            s3={"addressing_style": "path"},
        ),
    )


def endpoints():
    eps = [os.environ["AWS_ENDPOINT_URL"]]
    if os.environ.get("FERRY_TEST_S3_ENDPOINT2"):
        eps.append(os.environ["FERRY_TEST_S3_ENDPOINT2"])
    return eps


def until(deadline, what, fn):
    """Calls fn until it returns without an error; raises at the deadline."""
    last = None
    while True:
        try:
            return fn()
        except (BotoCoreError, ClientError) as e:
            last = e
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not ready after the deadline: {last}")
        time.sleep(0.1)


def ready(shape):
    bucket = os.environ["FERRY_TEST_S3_BUCKET"]
    deadline = time.monotonic() + 120
    first = client(endpoints()[0])

    def create():
        try:
            first.create_bucket(Bucket=bucket)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    t0 = time.monotonic()
    until(deadline, "create bucket", create)
    print(f"bucket: {time.monotonic() - t0:.2f} s")
    for ep in endpoints():
        c = client(ep)
        until(deadline, f"list on {ep}", lambda: c.list_objects_v2(Bucket=bucket, MaxKeys=1))
    # The first write grows the bucket's volumes; with replication 001 it
    # needs both volume servers registered. Pay that here, not in a test.
    print(f"listed on every gateway: {time.monotonic() - t0:.2f} s")
    key = ".ferry-ready-probe"
    until(deadline, "probe write", lambda: first.put_object(Bucket=bucket, Key=key, Body=b"x"))
    print(f"probe written: {time.monotonic() - t0:.2f} s")
    for ep in endpoints():
        c = client(ep)
        until(deadline, f"probe read on {ep}", lambda: c.get_object(Bucket=bucket, Key=key)["Body"].read())
    until(deadline, "probe delete", lambda: first.delete_object(Bucket=bucket, Key=key))
    print(f"ready: {shape}, {len(endpoints())} gateway(s)")


def objects(prefix):
    bucket = os.environ["FERRY_TEST_S3_BUCKET"]
    pages = client(endpoints()[0]).get_paginator("list_objects_v2")
    for page in pages.paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            print(o["Key"])


def pending(prefix):
    bucket = os.environ["FERRY_TEST_S3_BUCKET"]
    pages = client(endpoints()[0]).get_paginator("list_multipart_uploads")
    for page in pages.paginate(Bucket=bucket, Prefix=prefix):
        for u in page.get("Uploads", []):
            print(u["Key"], u["UploadId"], u["Initiated"].isoformat())


def check(step):
    bucket = os.environ["FERRY_TEST_S3_BUCKET"]
    size = 20 << 20
    # Deterministic content per gateway, so `get` can verify in a later run.
    blobs = {i: hashlib.sha256(b"%d" % i).digest() * (size // 32) for i in range(len(endpoints()))}
    tc = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20)
    clients = [client(ep) for ep in endpoints()]
    if step == "put":
        for i, c in enumerate(clients):
            t = time.monotonic()
            c.upload_fileobj(io.BytesIO(blobs[i]), bucket, f".ferry-check/{i}", Config=tc)
            etag = c.head_object(Bucket=bucket, Key=f".ferry-check/{i}")["ETag"]
            print(f"put .ferry-check/{i} via {endpoints()[i]}: {time.monotonic() - t:.2f} s, ETag {etag}")
    if step in ("put", "get"):
        for i in blobs:
            for j, c in enumerate(clients):
                buf = io.BytesIO()
                t = time.monotonic()
                c.download_fileobj(bucket, f".ferry-check/{i}", buf, Config=tc)
                if buf.getvalue() != blobs[i]:
                    raise SystemExit(f".ferry-check/{i} via {endpoints()[j]}: content differs")
                print(f"get .ferry-check/{i} via {endpoints()[j]}: {time.monotonic() - t:.2f} s, equal")
    if step == "clean":
        for i in blobs:
            clients[0].delete_object(Bucket=bucket, Key=f".ferry-check/{i}")


def main(argv):
    if len(argv) >= 2 and argv[1] == "ready":
        ready(argv[2] if len(argv) > 2 else "cluster")
    elif len(argv) >= 2 and argv[1] == "objects":
        objects(argv[2] if len(argv) > 2 else "")
    elif len(argv) == 3 and argv[1] == "check" and argv[2] in ("put", "get", "clean"):
        check(argv[2])
    elif len(argv) >= 2 and argv[1] == "pending":
        pending(argv[2] if len(argv) > 2 else "")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
