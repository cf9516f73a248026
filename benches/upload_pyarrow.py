"""pyarrow's side of benches/upload.rs: copies a local directory to the loopback S3 server with
``pyarrow.fs.copy_files`` on its defaults, and prints the seconds the copy took (interpreter
start, imports and the client's construction are not timed).

Usage: python upload_pyarrow.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET/PREFIX LOCAL_DIR
"""

import sys
import time

import pyarrow.fs as pafs


def main() -> None:
    endpoint, access, secret, destination, source = sys.argv[1:6]
    scheme, _, host = endpoint.partition("://")
    s3 = pafs.S3FileSystem(
        access_key=access,
        secret_key=secret,
        region="us-east-1",
        scheme=scheme,
        endpoint_override=host,
    )
    local = pafs.LocalFileSystem()
    started = time.perf_counter()
    pafs.copy_files(source, destination, source_filesystem=local, destination_filesystem=s3)
    print(f"{time.perf_counter() - started:.6f}")


if __name__ == "__main__":
    main()
