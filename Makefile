# beam_cxone: one entry point for setting up, running and testing on a fresh machine.
# Downloads are cached per machine under $(CACHE) (outside the repo); service data lives in .stack/.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CACHE ?= $(HOME)/.cache/beam_cxone
DEMO_TOPIC ?= cxone-demo-$(shell date +%s)
DEMO_COUNT ?= 3000
DEMO_RATE ?= 150
DEMO_SECONDS ?= 75

.PHONY: help venv stack-up stack-down stack-status stack-secure-up stack-secure-down flink-up flink-down \
        schema demo test test-unit \
        test-integration lint bench clean

help:
	@echo "make demo   - set up everything, stream a generated CXone feed through the job, print the rows"
	@echo "make test   - all tests (starts Kafka, Cassandra; builds Prism) - what CI runs"
	@echo "make stack-up | stack-down | stack-status | flink-up | flink-down | lint | bench"
	@echo "make stack-secure-up | stack-secure-down - the SASL_SSL Kafka and TLS+password Cassandra (.stack/secure)"

$(VENV)/.installed: setup.py
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==25.3
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

stack-up: venv
	bash stack/kafka.sh start
	bash stack/cassandra.sh start
	bash stack/prism.sh fetch

stack-down:
	-bash stack/flink.sh stop
	-bash stack/cassandra-secure.sh stop
	-bash stack/kafka-secure.sh stop
	-bash stack/cassandra.sh stop
	-bash stack/kafka.sh stop

stack-status:
	-bash stack/kafka.sh status
	-bash stack/cassandra.sh status
	-bash stack/kafka-secure.sh status
	-bash stack/cassandra-secure.sh status
	-bash stack/flink.sh status

# Secured twins (SASL_SSL Kafka on 9192, password + TLS Cassandra on 9142); client settings in
# .stack/secure/client.env. tests/integration/test_secured.py starts them itself.
stack-secure-up: venv
	bash stack/kafka-secure.sh start
	bash stack/cassandra-secure.sh start

stack-secure-down:
	-bash stack/cassandra-secure.sh stop
	-bash stack/kafka-secure.sh stop

flink-up: venv
	bash stack/flink.sh start

flink-down:
	bash stack/flink.sh stop

schema: stack-up
	$(PY) -m beam_cxone schema --cassandra_hosts=127.0.0.1

# The generator publishes while the job streams on the embedded runner (Prism); then the rows are printed.
demo: schema
	$(PY) -m beam_cxone generate --bootstrap_servers=127.0.0.1:9092 --topic=$(DEMO_TOPIC) --count=0 --quiet
	$(PY) -m beam_cxone generate --bootstrap_servers=127.0.0.1:9092 --topic=$(DEMO_TOPIC) \
	  --count=$(DEMO_COUNT) --rate=$(DEMO_RATE) --seed=7 --quiet & \
	$(PY) -m beam_cxone --bootstrap_servers=127.0.0.1:9092 --topic=$(DEMO_TOPIC) \
	  --cassandra_hosts=127.0.0.1 --run_seconds=$(DEMO_SECONDS) --idle_timeout_s=5; \
	wait
	$(PY) -m beam_cxone report --cassandra_hosts=127.0.0.1 --limit=15

test: stack-up
	bash .ci/pytest.sh

test-unit: venv
	$(PY) -m pytest -q -m "not integration" tests

test-integration: stack-up
	$(PY) -m pytest -q -m integration tests

lint: venv
	$(VENV)/bin/ruff check beam_cxone tests bench

bench: stack-up
	$(PY) bench/run_all.py

clean:
	rm -rf .stack build dist *.egg-info
