"""Runner profiles (runner_args), AnalyticsConfig validation, options -> typed configs, and
parse_time_ms (tier 1: no pipeline is built or run).

Anchor: 1_795_860_000_000 ms = 2026-11-28T10:00:00Z (`date -u -d @1795860000`).
"""

from __future__ import annotations

import hashlib
import os

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.utils.subprocess_server import JavaJarServer

from beam_cxone.commands.cmdline import runner_args
from beam_cxone.config import AnalyticsConfig
from beam_cxone.io.cassandra_write import CassandraConfig
from beam_cxone.io.kafka import KafkaReadConfig
from beam_cxone.options import OptionsError
from beam_cxone.options import analytics_config
from beam_cxone.options import cassandra_config
from beam_cxone.options import kafka_config
from beam_cxone.options import parse_time_ms
from beam_cxone.parse import ParseSettings
from beam_cxone.runners import profiles
from beam_cxone.runners.profiles import PRISM_PATCHES
from beam_cxone.runners.profiles import RunnerSetupError
from beam_cxone.runners.profiles import cache_dir
from beam_cxone.runners.profiles import prism_binary
from beam_cxone.transforms.patterns import PatternSpec

T0 = 1_795_860_000_000  # 2026-11-28T10:00:00Z
FN_API = "apache_beam.runners.portability.fn_api_runner.FnApiRunner"
JAR_NAME = "beam-runners-flink-1.20-job-server-2.77.0.jar"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """BEAM_CXONE_CACHE points at an empty temporary cache."""
    monkeypatch.setenv("BEAM_CXONE_CACHE", str(tmp_path))
    return tmp_path


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


@pytest.fixture
def prism(cache):
    """The patched Prism stack/prism.sh builds: its folder is named by a hash of the patch files."""
    return _touch(prism_binary())


def test_the_patched_prism_is_named_by_the_hash_of_the_patches(cache, monkeypatch):
    patches = sorted(PRISM_PATCHES.glob("*.patch"))
    assert patches, "the repository carries its Prism patches"
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in patches)).hexdigest()[:8]
    assert prism_binary() == cache / f"prism-2.77.0-{digest}" / "prism"
    monkeypatch.setenv("PRISM_STOCK", "1")
    assert prism_binary() == cache / "prism-2.77.0" / "prism"


@pytest.fixture
def jar(cache):
    return _touch(cache / "jars" / JAR_NAME)


# ---------------------------------------------------------------------------------------------
# runner_args
# ---------------------------------------------------------------------------------------------


def test_cache_dir_from_env_and_default(tmp_path, monkeypatch):
    # BEAM_CXONE_CACHE wins; otherwise ~/.cache/beam_cxone.
    monkeypatch.setenv("BEAM_CXONE_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("BEAM_CXONE_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "beam_cxone"


def test_streaming_default_is_prism_from_the_cache(prism):
    # No runner + streaming: PrismRunner, the cached binary, and --streaming.
    assert runner_args([], streaming=True) == [
        "--runner=PrismRunner",
        "--streaming",
        f"--prism_location={prism}",
        "--job_server_timeout=315360000",  # not Beam's 300 s, which ended streams after 5 min
    ]


def test_streaming_default_keeps_other_args_and_one_streaming_flag(prism):
    assert runner_args(["--topic=t", "--streaming"], streaming=True) == [
        "--topic=t",
        "--streaming",
        "--runner=PrismRunner",
        f"--prism_location={prism}",
        "--job_server_timeout=315360000",
    ]


def test_prism_missing_is_a_clear_error(cache):
    # The binary is not in the cache: say where it was looked for and how to get it.
    with pytest.raises(RunnerSetupError) as err:
        runner_args([], streaming=True)
    message = str(err.value)
    assert str(prism_binary()) in message
    assert "stack/prism.sh" in message and "--prism_location" in message


def test_prism_location_given_skips_the_cache(cache):
    # An explicit --prism_location is used as is (no cache check).
    assert runner_args(["--prism_location=/opt/prism"], streaming=True) == [
        "--prism_location=/opt/prism",
        "--runner=PrismRunner",
        "--streaming",
        "--job_server_timeout=315360000",
    ]


EVERY_CORE = ["--direct_running_mode=multi_processing", "--direct_num_workers=4"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # Batch default: the FnApiRunner by its dotted path (DirectRunner would fetch Prism), one
        # worker process per core (4 here).
        pytest.param([], [f"--runner={FN_API}", *EVERY_CORE], id="batch-default"),
        # The FnApiRunner alias.
        pytest.param(["--runner=FnApiRunner"], [f"--runner={FN_API}", *EVERY_CORE], id="alias"),
        # "--runner X" (two arguments) is replaced by one --runner=X.
        pytest.param(["--runner", "FnApiRunner", "--x=1"],
                     ["--x=1", f"--runner={FN_API}", *EVERY_CORE], id="separate-value"),
        # Another runner is passed through, no --streaming in batch.
        pytest.param(["--runner=DirectRunner"], ["--runner=DirectRunner"], id="other-runner"),
        # A worker count alone: the multi-process mode with it; 1 (or an explicit mode) as given.
        pytest.param(["--direct_num_workers=3"],
                     ["--direct_num_workers=3", f"--runner={FN_API}",
                      "--direct_running_mode=multi_processing"], id="workers"),
        pytest.param(["--direct_num_workers=1"], ["--direct_num_workers=1", f"--runner={FN_API}"],
                     id="one-worker"),
        pytest.param(["--direct_running_mode=in_memory"],
                     ["--direct_running_mode=in_memory", f"--runner={FN_API}"], id="in-memory"),
        pytest.param(["--direct_running_mode=multi_threading"],
                     ["--direct_running_mode=multi_threading", f"--runner={FN_API}",
                      "--direct_num_workers=4"], id="threads"),
    ],
)  # fmt: skip
def test_batch_runner_args(cache, monkeypatch, args, expected):
    monkeypatch.setattr(profiles, "cpu_count", lambda: 4)
    assert runner_args(args, streaming=False) == expected


def test_batch_runner_on_one_core_stays_in_memory(cache, monkeypatch):
    monkeypatch.setattr(profiles, "cpu_count", lambda: 1)
    assert runner_args([], streaming=False) == [f"--runner={FN_API}"]


def test_streaming_fn_api_runner_gets_no_worker_flags(cache, monkeypatch):
    monkeypatch.setattr(profiles, "cpu_count", lambda: 4)
    assert runner_args(["--runner=FnApiRunner"], streaming=True) == [
        f"--runner={FN_API}", "--streaming"]


def test_embedded_alias_is_prism(prism):
    assert runner_args(["--runner=embedded"], streaming=True) == [
        "--runner=PrismRunner",
        "--streaming",
        f"--prism_location={prism}",
        "--job_server_timeout=315360000",
    ]


def test_flink_streaming(jar):
    # FlinkRunner: the cached job-server jar, flink 1.20, LOOPBACK, checkpointing when streaming.
    args = ["--flink_master=localhost:8081", "--runner=FlinkRunner"]
    assert runner_args(args, streaming=True) == [
        "--flink_master=localhost:8081",
        "--runner=FlinkRunner",
        "--streaming",
        f"--flink_job_server_jar={jar}",
        "--flink_version=1.20",
        "--environment_type=LOOPBACK",
        "--checkpointing_interval=10000",
    ]


def test_flink_batch_has_no_checkpointing(jar):
    assert runner_args(["--runner", "FlinkRunner"], streaming=False) == [
        "--runner=FlinkRunner",
        f"--flink_job_server_jar={jar}",
        "--flink_version=1.20",
        "--environment_type=LOOPBACK",
    ]


def test_flink_user_flags_are_kept(cache):
    # Given flags are never overridden; a given jar is not looked up in the cache.
    args = [
        "--runner=FlinkRunner",
        "--flink_job_server_jar=/opt/jobserver.jar",
        "--flink_version=1.19",
        "--environment_type=EXTERNAL",
        "--checkpointing_interval=5000",
    ]
    assert runner_args(args, streaming=True) == args[1:] + ["--runner=FlinkRunner", "--streaming"]


def test_flink_jar_missing_is_a_clear_error(cache, monkeypatch):
    # No jar cached and the fetch fails (a port nothing listens on: no network needed).
    monkeypatch.setattr(JavaJarServer, "JAR_CACHE", str(cache / "beam-jars"))
    monkeypatch.setattr(profiles, "flink_job_server_url", lambda: f"http://127.0.0.1:1/{JAR_NAME}")
    with pytest.raises(RunnerSetupError) as err:
        runner_args(["--runner=FlinkRunner"], streaming=True)
    message = str(err.value)
    # Where it was expected, which Maven artifact it is, and how to pass it.
    assert str(cache / "jars" / JAR_NAME) in message
    assert "org.apache.beam:beam-runners-flink-1.20-job-server:2.77.0" in message
    assert "--flink_job_server_jar" in message


# ---------------------------------------------------------------------------------------------
# AnalyticsConfig
# ---------------------------------------------------------------------------------------------

DEDUP_MESSAGE = "dedup_ttl_s must exceed allowed_lateness_s, or a late duplicate could count twice"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"window_size_s": 0}, "window_size_s must be > 0, got 0", id="window"),
        pytest.param({"allowed_lateness_s": -1}, "allowed_lateness_s must be >= 0, got -1",
                     id="lateness"),
        # The dedup TTL must exceed the lateness (equal is not enough).
        pytest.param({"dedup_ttl_s": 30}, DEDUP_MESSAGE, id="dedup=L"),
        pytest.param({"dedup_ttl_s": 10}, DEDUP_MESSAGE, id="dedup<L"),
        pytest.param({"profile_ttl_s": 0}, "profile_ttl_s must be > 0, got 0", id="profile-ttl"),
        pytest.param({"failure_count": 0}, "failure_count must be >= 1, got 0", id="failure-count"),
        pytest.param({"pattern_within_s": 0.0}, "pattern_within_s must be > 0, got 0.0",
                     id="within"),
        pytest.param({"max_record_bytes": 0}, "max_record_bytes must be > 0, got 0",
                     id="max-bytes"),
    ],
)  # fmt: skip
def test_analytics_config_invalid_field(kwargs, message):
    with pytest.raises(ValueError) as err:
        AnalyticsConfig(**kwargs)
    assert str(err.value) == "invalid analytics settings: " + message


def test_analytics_config_collects_every_error():
    # All problems at once, in field order, separated by "; ".
    with pytest.raises(ValueError) as err:
        AnalyticsConfig(window_size_s=0, failure_count=0, max_record_bytes=-1)
    assert str(err.value) == (
        "invalid analytics settings: window_size_s must be > 0, got 0; "
        "failure_count must be >= 1, got 0; max_record_bytes must be > 0, got -1"
    )


def test_analytics_config_boundaries_accepted():
    # Zero lateness and a dedup TTL one second above it are valid.
    cfg = AnalyticsConfig(allowed_lateness_s=0, dedup_ttl_s=1)
    assert (cfg.allowed_lateness_s, cfg.dedup_ttl_s) == (0, 1)


@pytest.mark.parametrize(
    ("within_s", "within_ms"),
    [
        pytest.param(30.0, 30_000, id="default"),
        pytest.param(0.5, 500, id="half-second"),
        pytest.param(12.3456, 12_346, id="rounded-to-ms"),
    ],
)
def test_analytics_config_pattern_spec(within_s, within_ms):
    cfg = AnalyticsConfig(failure_count=4, pattern_within_s=within_s)
    assert cfg.pattern_spec == PatternSpec(failure_count=4, within_ms=within_ms)


def test_analytics_config_rejects_within_that_rounds_to_zero_ms():
    with pytest.raises(ValueError, match="pattern_within_s"):
        AnalyticsConfig(pattern_within_s=0.0004)


def test_analytics_config_parse_settings():
    cfg = AnalyticsConfig(failure_reasons=("Busy", "Timeout"), max_record_bytes=2048)
    assert cfg.parse_settings == ParseSettings(
        failure_reasons=frozenset({"Busy", "Timeout"}), max_record_bytes=2048
    )


def test_analytics_config_defaults():
    # docs/SEMANTICS.md defaults.
    cfg = AnalyticsConfig()
    assert (
        cfg.window_size_s,
        cfg.allowed_lateness_s,
        cfg.dedup_ttl_s,
        cfg.profile_ttl_s,
        cfg.failure_count,
        cfg.pattern_within_s,
        cfg.failure_reasons,
        cfg.max_record_bytes,
    ) == (10, 30, 600, 2_592_000, 3, 30.0, ("Abandoned", "Refused", "Failed", "Busy", "No Answer"),
          1_048_576)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# options -> configs
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def no_kafka_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("KAFKA_"):
            monkeypatch.delenv(key)


def test_kafka_config_defaults(no_kafka_env):
    assert kafka_config(PipelineOptions([])) == KafkaReadConfig(
        bootstrap_servers="localhost:9092",
        topic="cxone-data-actions",
        group_id="beam-cxone",
        start="earliest",
        start_timestamp_ms=None,
        bounded=False,
        stop_timestamp_ms=None,
        max_events_per_second=0.0,
        out_of_orderness_ms=5_000,
        allowed_lateness_ms=30_000,
        idle_timeout_ms=10_000,
        max_record_bytes=1_048_576,
        consumer_config=(),
    )


def test_kafka_config_from_flags(no_kafka_env, monkeypatch):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    options = PipelineOptions(
        [
            "--bootstrap_servers=b1:9092,b2:9092",
            "--topic=t1",
            "--group_id=",
            "--start_position=timestamp",
            "--start_timestamp=2026-11-28T12:00:00+02:00",  # = T0
            "--stop_timestamp=1795860060000",  # T0 + 60 s, epoch ms
            "--max_events_per_second=250",
            "--out_of_orderness_s=2.5",
            "--idle_timeout_s=0.5",
            "--allowed_lateness_s=45",
            "--max_record_bytes=4096",
        ]
    )
    assert kafka_config(options) == KafkaReadConfig(
        bootstrap_servers="b1:9092,b2:9092",
        topic="t1",
        group_id=None,  # an empty group id is none
        start="timestamp",
        start_timestamp_ms=T0,
        bounded=True,  # a stop timestamp makes the read bounded
        stop_timestamp_ms=T0 + 60_000,
        max_events_per_second=250.0,
        out_of_orderness_ms=2_500,
        allowed_lateness_ms=45_000,
        idle_timeout_ms=500,
        max_record_bytes=4096,
        consumer_config=(),  # secrets stay out of the job graph: read on the worker
    )
    # ... where the consumer's arguments are built (setup() and initial_restriction() on workers).
    kwargs = kafka_config(options).consumer_kwargs()
    assert (kwargs["security_protocol"], kwargs["sasl_mechanism"]) == ("SASL_SSL", "PLAIN")


@pytest.mark.parametrize(
    ("flags", "bounded_arg", "bounded"),
    [
        pytest.param([], None, False, id="streaming-default"),
        pytest.param(["--bounded"], None, True, id="flag"),
        pytest.param([], True, True, id="argument-overrides"),
        pytest.param(["--bounded"], False, False, id="argument-overrides-flag"),
    ],
)
def test_kafka_config_bounded(no_kafka_env, flags, bounded_arg, bounded):
    assert kafka_config(PipelineOptions(flags), bounded=bounded_arg).bounded is bounded


def test_kafka_config_collects_errors(no_kafka_env):
    # Every problem at once, one per line, each with its option.
    options = PipelineOptions(
        ["--start_timestamp=not-a-time", "--stop_timestamp=2026-11-28T10:00:00", "--topic="]
    )
    with pytest.raises(OptionsError) as err:
        kafka_config(options)
    lines = str(err.value).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "--start_timestamp",
        "--stop_timestamp",
        "kafka",
    ]
    assert "has no offset" in lines[1]
    assert "topic is empty" in lines[2]


def test_kafka_config_start_timestamp_required(no_kafka_env):
    with pytest.raises(OptionsError, match="start=timestamp needs start_timestamp_ms"):
        kafka_config(PipelineOptions(["--start_position=timestamp"]))


def test_analytics_config_from_options():
    options = PipelineOptions(
        [
            "--window_size_s=60",
            "--allowed_lateness_s=10",
            "--dedup_ttl_s=120",
            "--profile_ttl_s=3600",
            "--failure_count=2",
            "--pattern_within_s=12.5",
            "--failure_reasons= Busy, ,No Answer ,",
            "--max_record_bytes=1000",
        ]
    )
    assert analytics_config(options) == AnalyticsConfig(
        window_size_s=60,
        allowed_lateness_s=10,
        dedup_ttl_s=120,
        profile_ttl_s=3600,
        failure_count=2,
        pattern_within_s=12.5,
        failure_reasons=("Busy", "No Answer"),  # trimmed, empty items dropped
        max_record_bytes=1000,
    )


def test_analytics_config_defaults_from_options():
    assert analytics_config(PipelineOptions([])) == AnalyticsConfig()


def test_analytics_config_invalid_options():
    with pytest.raises(OptionsError, match="window_size_s must be > 0, got 0"):
        analytics_config(PipelineOptions(["--window_size_s=0"]))


def test_cassandra_config_from_options():
    options = PipelineOptions(
        [
            "--cassandra_hosts=h1, h2,,",
            "--cassandra_port=9043",
            "--cassandra_keyspace=ks_test",
            "--cassandra_consistency=ONE",
            "--cassandra_max_in_flight=7",
            "--cassandra_replication_factor=3",
            "--cassandra_tls",
            "--cassandra_ca_file=/etc/ca.pem",
        ]
    )
    assert cassandra_config(options) == CassandraConfig(
        hosts=("h1", "h2"),
        port=9043,
        keyspace="ks_test",
        consistency="ONE",
        max_in_flight=7,
        tls=True,
        ca_file="/etc/ca.pem",
        replication={"class": "SimpleStrategy", "replication_factor": 3},
    )


def test_cassandra_config_defaults():
    cfg = cassandra_config(PipelineOptions([]))
    assert (cfg.hosts, cfg.port, cfg.keyspace, cfg.consistency, cfg.tls, cfg.replication) == (
        ("127.0.0.1",),
        9042,
        "cxone_analytics",
        "LOCAL_QUORUM",
        False,
        {"class": "SimpleStrategy", "replication_factor": 1},
    )


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        pytest.param(["--cassandra_consistency=MOSTLY"], "unknown consistency 'MOSTLY'", id="cl"),
        pytest.param(["--cassandra_hosts= , "], "hosts is empty", id="hosts"),
        pytest.param(["--cassandra_ca_file=/ca.pem"], "ca_file needs tls=True", id="ca-no-tls"),
        pytest.param(["--cassandra_max_in_flight=0"], "max_in_flight must be >= 1", id="in-flight"),
    ],
)
def test_cassandra_config_invalid(flags, fragment):
    with pytest.raises(OptionsError) as err:
        cassandra_config(PipelineOptions(flags))
    assert str(err.value).startswith("cassandra: ")
    assert fragment in str(err.value)


# ---------------------------------------------------------------------------------------------
# parse_time_ms
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="none"),  # unset
        pytest.param("", None, id="empty"),  # unset
        pytest.param(T0, T0, id="int"),  # epoch ms as an int
        pytest.param("1795860000000", T0, id="digits"),  # epoch ms as text
        pytest.param("-1000", -1000, id="negative-digits"),  # before the epoch
        pytest.param("2026-11-28T10:00:00Z", T0, id="Z"),
        pytest.param("2026-11-28T10:00:00z", T0, id="lowercase-z"),
        pytest.param("2026-11-28T12:00:00+02:00", T0, id="plus-02"),
        pytest.param("2026-11-28T05:00:00-05:00", T0, id="minus-05"),
        pytest.param("2026-11-28T10:00:00.250Z", T0 + 250, id="millis"),
        pytest.param("2026-11-28T10:00:00.123Z", T0 + 123, id="millis-123"),
    ],
)
def test_parse_time_ms(value, expected):
    assert parse_time_ms(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("2026-11-28T10:00:00", id="no-offset"),  # a time without offset
        pytest.param("2026-11-28", id="date-only"),  # no time, no offset
        pytest.param("yesterday", id="garbage"),
    ],
)
def test_parse_time_ms_rejects(value):
    with pytest.raises(ValueError):
        parse_time_ms(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("1970-01-01T00:00:01.001Z", 1_001, id="1.001s"),
        pytest.param("2004-08-04T16:26:33.123Z", 1_091_636_793_123, id="2004"),  # @1091636793
        pytest.param("1969-12-31T23:58:54.474Z", -65_526, id="before-epoch"),  # -65.526 s
    ],
)
def test_parse_time_ms_exact_millis(value, expected):
    # --start_timestamp/--stop_timestamp (exclusive) must be the exact instant given.
    assert parse_time_ms(value) == expected
