"""Real PostgreSQL, Redis, Kafka and kube-apiserver for development and tests, without Docker.

Every server here is a real one: PostgreSQL and Redis from pip wheels, Kafka from its Maven
Central jars, kube-apiserver and etcd built from the Go module proxy. Downloads and builds are
cached under :func:`pinstack_devinfra.cache.cache_dir`.
"""
