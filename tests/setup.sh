#!/usr/bin/env bash
# Installs what the demo or the test suite needs and this machine lacks (Debian, as root), so that the
# README's two commands work on a fresh clone of a fresh machine. Usage: tests/setup.sh demo|tests
set -euo pipefail
what=${1:-tests}
need=()
command -v nft >/dev/null || need+=(nftables)
command -v ip >/dev/null || need+=(iproute2)
if [ "$what" = tests ]; then
    command -v python3 >/dev/null || need+=(python3 python3-pip)
    # Real UPnP peers and tools for the IGD tests: miniupnpc's upnpc, conntrack-tools.
    command -v upnpc >/dev/null || need+=(miniupnpc)
    command -v conntrack >/dev/null || need+=(conntrack)
    # The API guide's examples are run as shown (tests/tests/docs.rs).
    command -v curl >/dev/null || need+=(curl)
    # The router builds run under qemu-user; build-packages.sh installs its own toolchain pieces.
    command -v qemu-mips-static >/dev/null || need+=(qemu-user-static)
    # The LuCI views are rendered in Debian's Chromium, driven by Playwright (PyPI) without its own browser.
    command -v chromium >/dev/null || need+=(chromium)
    # OpenWrt's shell: the package's scripts run under busybox ash with OpenWrt's default applets only.
    [ -x /bin/busybox ] || need+=(busybox)
fi
# Debian's miniupnpd-nftables (the ISP router of the double-NAT lab, and the IGD benchmark's peer): its
# package would start the service on the host and set up the host's firewall, so it is installed with
# a policy-rc.d that forbids starting services, removed again if it was not there.
quiet_need=()
if [ "$what" = tests ]; then
    command -v miniupnpd >/dev/null || quiet_need+=(miniupnpd-nftables)
fi
if [ $((${#need[@]} + ${#quiet_need[@]})) -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        echo "tests/setup.sh: please install ${need[*]} ${quiet_need[*]} (no apt-get here)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    [ ${#need[@]} -eq 0 ] || apt-get install -y -qq "${need[@]}"
fi
if [ ${#quiet_need[@]} -gt 0 ]; then
    own_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        own_policy=1
    fi
    status=0
    apt-get install -y -qq "${quiet_need[@]}" </dev/null >/dev/null || status=$?
    [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
    [ "$status" = 0 ] || { echo "tests/setup.sh: cannot install ${quiet_need[*]}" >&2; exit 1; }
fi
if [ "$what" = tests ]; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
    # The second, independent UPnP client (PyPI).
    python3 -c 'import async_upnp_client' 2>/dev/null || python3 -m pip install -q 'async-upnp-client==0.49.0'
    # The API contract test validates real answers against agent/openapi.yaml with openapi-core (PyPI).
    python3 -c 'import openapi_core' 2>/dev/null || python3 -m pip install -q 'openapi-core==0.19.5'
    python3 -c 'import playwright' 2>/dev/null || python3 -m pip install -q 'playwright==1.49.1'
fi
