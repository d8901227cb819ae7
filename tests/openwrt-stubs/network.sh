# Stand-in for OpenWrt's /lib/functions/network.sh: logical networks from STUB_NET_<name> variables
# (STUB_NET_wan=wan0 STUB_NET_lan=br-lan), as netifd would answer over ubus.
network_flush_cache() { :; }
network_get_device() {
	eval "__dev=\${STUB_NET_$2:-}"
	[ -n "$__dev" ] || return 1
	eval "$1=\"\$__dev\""
}
