"""Packaging for beam_cxone: pinned runtime dependencies and the `beam-cxone` console entry point."""

from setuptools import find_packages
from setuptools import setup

# Pinned: apache-beam must equal the Beam version of the runner used (Prism is built from the same tag).
INSTALL_REQUIRES = [
    "apache-beam==2.77.0",
    "kafka-python==3.0.12",
    "crc32c==2.9.post0",  # kafka-python checks record CRCs in pure Python without it (raw read ~5x slower)
    "cassandra-driver==3.30.1",
    "orjson==3.13.0",  # parse.py decodes with it where it gives the standard library's result (~3x faster)
    "requests==2.34.2",
    "requests-oauthlib==2.0.0",
    "PyYAML==6.0.4",
    "tenacity==9.2.1",
    "tqdm==4.70.1",
    "matplotlib==3.11.2",
    "prometheus_client==0.26.0",
]

TEST_REQUIRES = [
    "pytest==8.4.2",
    "ruff==0.14.5",
    "py-spy==0.4.3",  # bench/bench_e2e.py --profile samples the job with it
]

setup(
    name="beam_cxone",
    version="0.1.0",
    description="Apache Beam pipeline for NICE CXone contact-center analytics (Kafka to Cassandra).",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["beam_cxone", "beam_cxone.*"]),
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": TEST_REQUIRES},
    entry_points={"console_scripts": ["beam-cxone=beam_cxone.__main__:main"]},
)
