# Convenience targets over cargo. `make release` is what to deploy: the same
# code as `cargo build --release`, linked statically, which starts ~0.3 ms
# faster (no dynamic loader; see BENCHMARKS.md).
PREFIX ?= /usr/local
HOST := $(shell rustc -vV | sed -n 's/^host: //p')
STATIC := target/$(HOST)/release

.PHONY: build release install install-systemd test bench check
build:
	cargo build --workspace

release:
	RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --target $(HOST) -p cordon -p cordon-shim

# cordon and cordon-shim side by side (cordon finds the shim next to
# itself), where examples/systemd/cordon.service expects them with the
# default PREFIX; the shipped profiles in PREFIX/share/cordon/profiles
# (`cordon run --profile NAME` finds them there); man pages and completions generated from the clap
# definition by the binary just built.
install: release
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(STATIC)/cordon $(STATIC)/cordon-shim $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/share/cordon/profiles
	install -m 0644 profiles/*.toml $(DESTDIR)$(PREFIX)/share/cordon/profiles/
	$(STATIC)/cordon generate man $(DESTDIR)$(PREFIX)/share/man/man1 >/dev/null
	$(STATIC)/cordon generate completions target/completions >/dev/null
	install -D -m 0644 target/completions/cordon.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/cordon
	install -D -m 0644 target/completions/_cordon $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_cordon
	install -D -m 0644 target/completions/cordon.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/cordon.fish

# The service: unit, users, directories, and an example configuration
# (never overwriting one that exists).
install-systemd:
	install -D -m 0644 examples/systemd/cordon.service $(DESTDIR)/etc/systemd/system/cordon.service
	install -D -m 0644 examples/systemd/cordon.sysusers.conf $(DESTDIR)/usr/lib/sysusers.d/cordon.conf
	install -D -m 0644 examples/systemd/cordon.tmpfiles.conf $(DESTDIR)/usr/lib/tmpfiles.d/cordon.conf
	install -d -m 0755 $(DESTDIR)/etc/cordon/profiles
	test -e $(DESTDIR)/etc/cordon/cordon.toml || install -m 0644 examples/systemd/cordon.toml $(DESTDIR)/etc/cordon/cordon.toml

test:
	scripts/test-all.sh

bench:
	bench/startup.sh

check: build
	target/debug/cordon check profiles/*.toml
