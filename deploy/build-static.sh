#!/bin/sh
# Builds govlogd, govlog, govlog-witness and govlog-gate as static
# binaries into the directory $1: what the Dockerfile runs, and what its
# test runs.
#
# SQLite is C (github.com/mattn/go-sqlite3), so CGO is on; the binaries are
# linked statically against glibc (the C library of the Debian-based
# golang image, whose gcc and libc6-dev this needs). osusergo and netgo
# replace the parts of glibc that a static binary cannot load at run time
# (NSS user and host lookups) with Go's own; sqlite_omit_load_extension
# drops SQLite's dlopen of extensions, which govlog never uses. Nothing is
# downloaded here beyond Go modules (go mod download, from the Go module
# proxy).
set -eu
out=${1:?usage: build-static.sh OUTDIR}
mkdir -p "$out"
CGO_ENABLED=1 exec go build -trimpath \
	-tags 'osusergo netgo sqlite_omit_load_extension' \
	-ldflags '-s -w -linkmode external -extldflags -static' \
	-o "$out/" ./cmd/govlogd ./cmd/govlog ./cmd/govlog-witness ./cmd/govlog-gate
