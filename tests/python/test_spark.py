"""Apache Spark (pyspark from PyPI, local mode, on the Debian Java runtime) reads a store written by
Mission Control's Rust side in place, on disk and in a bucket of the loopback S3 server, discovers
its Hive partitions, and answers three questions exactly as our own engine (`mission-ctl sql`,
DataFusion) does on the same files: cost by model over 24 h, p95 of duration by operation, rows
per tenant.

S3A: pyspark bundles Hadoop's client (3.5 in pyspark 4.3) but not hadoop-aws, and Maven Central is
out of reach; the PyPI package `sagemaker-pyspark` (installed with --no-deps) ships hadoop-aws 3.3.1
and the AWS SDK v1 bundle it was built against. That S3A reads numeric settings to which Hadoop
3.4+ gives defaults with units ("60s"), so SPARK_S3A_COMPAT restates those four as plain numbers
(the same durations): without them the filesystem fails to start with NumberFormatException.
"""

import functools
import importlib.util
import json
import math
import os
import pathlib
import shutil
import subprocess
import time

import pytest

from conftest import S3_ACCESS_KEY, S3_SECRET_KEY, ctl_binary, upload_store, write_fixture_store

NS_PER_HOUR = 3_600 * 1_000_000_000
# The fixture's threads start over the 36 hours ending ten minutes ago: a 24 h window leaves some
# out, and the store has partitions of two dates and dozens of hours.
FIXTURE_HOURS = 36

# hadoop-aws 3.3.1 reads these with getInt/getLong; Hadoop 3.5's core-default.xml writes them with
# units. Same values, plain numbers (seconds, milliseconds, milliseconds, seconds).
SPARK_S3A_COMPAT = {
    "spark.hadoop.fs.s3a.threads.keepalivetime": "60",
    "spark.hadoop.fs.s3a.connection.establish.timeout": "30000",
    "spark.hadoop.fs.s3a.connection.timeout": "200000",
    "spark.hadoop.fs.s3a.multipart.purge.age": "86400",
}


def s3a_jars():
    """hadoop-aws and the AWS SDK bundle, from the sagemaker-pyspark package's jars/."""
    spec = importlib.util.find_spec("sagemaker_pyspark")
    assert spec is not None, "sagemaker-pyspark is not installed (tests/python/requirements-spark.txt)"
    jars = pathlib.Path(spec.submodule_search_locations[0]) / "jars"
    found = [jars / "hadoop-aws-3.3.1.jar", jars / "aws-java-sdk-bundle-1.11.901.jar"]
    for jar in found:
        assert jar.is_file(), f"{jar} is missing from sagemaker-pyspark"
    return [str(jar) for jar in found]


def spark_options(endpoint, access_key, secret_key):
    """Every option the Spark session gets (the README shows the same)."""
    return {
        "spark.jars": ",".join(s3a_jars()),
        # Our times are nanosecond Parquet timestamps: Spark reads them as longs.
        "spark.sql.legacy.parquet.nanosAsLong": "true",
        "spark.hadoop.fs.s3a.endpoint": endpoint,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        # Only the keys given here: no environment, profile or instance-metadata lookups.
        "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "spark.hadoop.fs.s3a.access.key": access_key,
        "spark.hadoop.fs.s3a.secret.key": secret_key,
        **SPARK_S3A_COMPAT,
        # A test on loopback: no web UI, few shuffle partitions, the driver on 127.0.0.1.
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "2",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
    }


@pytest.fixture(scope="module")
def spark(s3_server):
    """One Spark session (one JVM) for the module, local[2], pointed at the loopback S3 server."""
    assert shutil.which("java"), "no java on PATH: scripts/test installs openjdk-17-jre-headless"
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[2]").appName("mission-control-test")
    for key, value in spark_options(s3_server.endpoint, S3_ACCESS_KEY, S3_SECRET_KEY).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@functools.lru_cache(maxsize=None)
def _ours(store, query, env):
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    run = subprocess.run([ctl_binary(), "sql", query, "--store", store, "--format", "json"],
                         capture_output=True, text=True, env={**base, **dict(env)})
    assert run.returncode == 0, f"mission-ctl sql failed ({run.returncode}):\n{run.stderr}"
    return run.stdout


def ours(store, query, env=None):
    """Rows of `mission-ctl sql QUERY --store STORE --format json` (our DataFusion engine), run
    once per store, query and environment."""
    return json.loads(_ours(str(store), query, tuple(sorted((env or {}).items()))))


def events(spark, root):
    """The store's events read by Spark from ROOT (Hive partitions discovered from the paths,
    listed once per root), registered as the view `events`."""
    frames = spark.__dict__.setdefault("mission_events", {})
    root = str(root)
    if root not in frames:
        frames[root] = spark.read.parquet(f"{root}/events")
    frames[root].createOrReplaceTempView("events")
    return frames[root]


def spark_rows(spark, root, query):
    """Rows of QUERY in Spark over the events at ROOT, as dicts."""
    events(spark, root)
    return [row.asDict() for row in spark.sql(query).collect()]


# The same SQL text runs in both engines. `time` is a nanosecond timestamp for DataFusion and a long
# for Spark (nanosAsLong); CAST(time AS BIGINT) is nanoseconds since the epoch in both.
def cost_by_model(since_ns):
    return f"""
        SELECT gen_ai_request_model AS model, count(*) AS calls,
               sum(gen_ai_usage_input_tokens) AS input_tokens,
               sum(gen_ai_usage_output_tokens) AS output_tokens,
               sum(gen_ai_usage_cost) AS cost
        FROM events
        WHERE kind = 'llm_call' AND CAST(time AS BIGINT) >= {since_ns}
        GROUP BY gen_ai_request_model"""


# p95 by operation, exact: the count n and the two order statistics around the position
# (n - 1) * 0.95 (0-based, in double precision), which is how Spark's exact `percentile`
# interpolates. Integer division and decimal literals differ between the engines, so every step is
# an explicit DOUBLE.
P95_BRACKETS = """
    WITH ranked AS (
        SELECT gen_ai_operation_name AS operation, duration_ns,
               row_number() OVER (PARTITION BY gen_ai_operation_name ORDER BY duration_ns) - 1 AS i,
               count(*) OVER (PARTITION BY gen_ai_operation_name) AS n
        FROM events
        WHERE duration_ns IS NOT NULL AND gen_ai_operation_name IS NOT NULL
    ), placed AS (
        SELECT operation, duration_ns, i, n,
               CAST(n - 1 AS DOUBLE) * CAST(0.95 AS DOUBLE) AS position
        FROM ranked
    )
    SELECT operation, max(n) AS n,
           max(CASE WHEN i = floor(position) THEN duration_ns END) AS lower,
           max(CASE WHEN i = ceil(position) THEN duration_ns END) AS upper
    FROM placed GROUP BY operation"""

# Spark's own exact percentile, for the check that the brackets above are its definition.
SPARK_P95 = """
    SELECT gen_ai_operation_name AS operation, percentile(duration_ns, 0.95) AS p95
    FROM events
    WHERE duration_ns IS NOT NULL AND gen_ai_operation_name IS NOT NULL
    GROUP BY gen_ai_operation_name"""

ROWS_PER_TENANT = "SELECT tenant, count(*) AS events FROM events GROUP BY tenant"


def interpolate(n, lower, upper):
    """Spark's exact percentile from the brackets: linear between the closest ranks."""
    position = (n - 1) * 0.95
    low, high = math.floor(position), math.ceil(position)
    if low == high or lower == upper:
        return float(lower)
    return (high - position) * float(lower) + (position - low) * float(upper)


def by(rows, key):
    table = {row[key]: row for row in rows}
    assert len(table) == len(rows), f"duplicate {key} in {rows}"
    return table


def assert_same_costs(spark_answer, our_answer):
    spark_by_model, our_by_model = by(spark_answer, "model"), by(our_answer, "model")
    assert set(spark_by_model) == set(our_by_model)
    for model, want in our_by_model.items():
        got = spark_by_model[model]
        assert (got["calls"], got["input_tokens"], got["output_tokens"]) == (
            want["calls"], want["input_tokens"], want["output_tokens"]), model
        # Float sums in another order (Spark's partitions, DataFusion's batches): equal to the
        # last few bits only.
        assert math.isclose(got["cost"], want["cost"], rel_tol=1e-12), (model, got, want)


def partitions_on_disk(directory):
    """(tenant, date, hour) of every partition directory holding a Parquet file."""
    found = set()
    for path in pathlib.Path(directory).glob("events/tenant=*/date=*/hour=*/*.parquet"):
        hour, date, tenant = (p.name.split("=", 1)[1] for p in list(path.parents)[:3])
        found.add((tenant, date, int(hour)))
    return found


@pytest.fixture(scope="module")
def day_store(tmp_path_factory):
    """(store directory, what the Rust side recorded): 600 threads over two tenants and the last
    36 hours."""
    directory = tmp_path_factory.mktemp("spark-store")
    return directory, write_fixture_store(directory, 600, FIXTURE_HOURS)


@pytest.fixture(scope="module")
def bucket_store(day_store, s3_server):
    """The fixture store copied to `s3://<bucket>/spark/data/`: (s3 URL, keys uploaded)."""
    directory, _ = day_store
    keys = upload_store(s3_server, directory, s3_server.bucket, "spark/data")
    return f"s3://{s3_server.bucket}/spark/data", keys


def test_spark_discovers_the_hive_partitions(spark, day_store):
    directory, expected = day_store
    frame = events(spark, directory)
    types = dict(frame.dtypes)
    assert types["time"] == "bigint"  # nanoseconds since the epoch (nanosAsLong)
    assert types["tenant"] == "string" and types["date"] == "date" and types["hour"] == "int"
    assert types["attributes"] == "map<string,string>"
    assert frame.count() == expected["events"]
    seen = {(r["tenant"], r["date"].isoformat(), r["hour"])
            for r in frame.select("tenant", "date", "hour").distinct().collect()}
    assert seen == partitions_on_disk(directory)
    assert {tenant for tenant, _, _ in seen} == {"tenant-0", "tenant-1"}
    assert len({(date, hour) for _, date, hour in seen}) > 24
    # The fixture reaches further back than 24 h, so the window below leaves rows out.
    oldest, newest = frame.selectExpr("min(time)", "max(time)").first()
    assert oldest < time.time_ns() - 24 * NS_PER_HOUR < newest


def test_spark_on_disk_answers_as_ours(spark, day_store):
    directory, expected = day_store
    since = time.time_ns() - 24 * NS_PER_HOUR

    costs = spark_rows(spark, directory, cost_by_model(since))
    assert len(costs) >= 2, costs
    assert_same_costs(costs, ours(directory, cost_by_model(since)))
    # All time (from 0): the totals the Rust side recorded, and more than the last 24 h.
    ever = spark_rows(spark, directory, cost_by_model(0))
    assert_same_costs(ever, ours(directory, cost_by_model(0)))
    assert sum(row["input_tokens"] for row in ever) == expected["input_tokens"]
    assert math.isclose(sum(row["cost"] for row in ever), expected["cost_usd"], rel_tol=1e-9)
    assert sum(row["calls"] for row in costs) < sum(row["calls"] for row in ever) == expected["llm_calls"]

    brackets = spark_rows(spark, directory, P95_BRACKETS)
    assert len(brackets) >= 2, brackets
    assert by(brackets, "operation") == by(ours(directory, P95_BRACKETS), "operation")
    p95 = {row["operation"]: row["p95"] for row in spark_rows(spark, directory, SPARK_P95)}
    assert p95 == {op: interpolate(r["n"], r["lower"], r["upper"]) for op, r in by(brackets, "operation").items()}

    tenants = spark_rows(spark, directory, ROWS_PER_TENANT)
    assert by(tenants, "tenant") == by(ours(directory, ROWS_PER_TENANT), "tenant")
    assert sum(row["events"] for row in tenants) == expected["events"]


def test_spark_on_s3_answers_as_ours(spark, day_store, s3_server, bucket_store):
    directory, expected = day_store
    url, keys = bucket_store
    assert len(keys) == expected["files"] >= 2
    s3a = "s3a" + url[len("s3"):]
    since = time.time_ns() - 24 * NS_PER_HOUR
    env = s3_server.env()

    # Our engine on S3 answers as on disk.
    assert_same_costs(ours(url, cost_by_model(since), env), ours(directory, cost_by_model(since)))
    for query, key in ((P95_BRACKETS, "operation"), (ROWS_PER_TENANT, "tenant")):
        assert by(ours(url, query, env), key) == by(ours(directory, query), key)

    costs = spark_rows(spark, s3a, cost_by_model(since))
    assert_same_costs(costs, ours(url, cost_by_model(since), env))
    assert_same_costs(costs, spark_rows(spark, directory, cost_by_model(since)))

    brackets = spark_rows(spark, s3a, P95_BRACKETS)
    assert by(brackets, "operation") == by(ours(url, P95_BRACKETS, env), "operation")
    assert by(brackets, "operation") == by(spark_rows(spark, directory, P95_BRACKETS), "operation")

    tenants = spark_rows(spark, s3a, ROWS_PER_TENANT)
    assert by(tenants, "tenant") == by(ours(url, ROWS_PER_TENANT, env), "tenant")
    assert sum(row["events"] for row in tenants) == expected["events"]
    assert {row["tenant"] for row in tenants} == {"tenant-0", "tenant-1"}

    # Spark listed the bucket: the same partitions as on disk.
    partitions = "SELECT DISTINCT tenant, CAST(date AS STRING) AS date, hour FROM events"
    seen = {(r["tenant"], r["date"], r["hour"]) for r in spark_rows(spark, s3a, partitions)}
    assert seen == partitions_on_disk(directory)
