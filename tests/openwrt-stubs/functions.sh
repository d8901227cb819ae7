# Stand-in for OpenWrt's /lib/functions.sh, for the tests only: the functions the package's maintainer
# scripts call, doing what OpenWrt 25.12's do (package/base-files/files/lib/functions.sh; 24.10's
# differ only in what the package does not use: alternatives, the LuCI cache's name).
# The package name: apk's scripts export pkgname; opkg's pass their own path
#   (/usr/lib/opkg/info/NAME.postinst) as $1. The file list: /lib/apk/packages/NAME.list (apk), else
#   /usr/lib/opkg/info/NAME.list (opkg); a package without one gets nothing enabled or started.
# default_postinst: on a running router (no IPKG_INSTROOT) run the package's uci-defaults (each in a
#   subshell, removed only when it exits 0) and `uci commit`, then the opkg postinst-pkg part, then for
#   each init script `enable` (not on upgrade) and `start`; in an image build only `enable`.
# default_prerm: the opkg prerm-pkg part, then each init script's `disable` (not on upgrade) and `stop`.
# Init scripts run as procd's rc.common runs them: executed, their interpreter line names rc.common.
package_files() {
	local list="$root/usr/lib/opkg/info/$pkgname.list"
	[ -f "$root/lib/apk/packages/$pkgname.list" ] && list="$root/lib/apk/packages/$pkgname.list"
	echo "$list"
}

add_group_and_user() {
	[ -z "$pkgname" ] && local pkgname="$(basename ${1%.*})"
	# The package asks for no users; a stand-in that cannot add one says so rather than pretend.
	if [ -f "$root/lib/apk/packages/$pkgname.rusers" ]; then
		echo "functions.sh stand-in: cannot add users" >&2
		return 1
	fi
}

default_postinst() {
	local root="${IPKG_INSTROOT}"
	[ -z "$pkgname" ] && local pkgname="$(basename ${1%.*})"
	local filelist="$(package_files)" ret=0 i
	if [ -z "$root" ]; then
		if grep -m1 -q -s "^/etc/uci-defaults/" "$filelist"; then
			[ -d /tmp/.uci ] || mkdir -p /tmp/.uci
			for i in $(grep -s "^/etc/uci-defaults/" "$filelist"); do
				( [ -f "$i" ] && cd "$(dirname $i)" && . "$i" ) && rm -f "$i"
			done
			uci commit
		fi
		rm -f /tmp/luci-indexcache.*
	fi
	if [ -f "$root/usr/lib/opkg/info/$pkgname.postinst-pkg" ]; then
		( . "$root/usr/lib/opkg/info/$pkgname.postinst-pkg" )
		ret=$?
	fi
	for i in $(grep -s "^/etc/init.d/" "$filelist"); do
		if [ -n "$root" ]; then
			/bin/sh "$root/etc/rc.common" "$root$i" enable
		else
			[ "$PKG_UPGRADE" != "1" ] && "$i" enable
			"$i" start
		fi
	done
	return $ret
}

default_prerm() {
	local root="${IPKG_INSTROOT}"
	[ -z "$pkgname" ] && local pkgname="$(basename ${1%.*})"
	local filelist="$(package_files)" ret=0 i
	if [ -f "$root/usr/lib/opkg/info/$pkgname.prerm-pkg" ]; then
		( . "$root/usr/lib/opkg/info/$pkgname.prerm-pkg" )
		ret=$?
	fi
	for i in $(grep -s "^/etc/init.d/" "$filelist"); do
		if [ -n "$root" ]; then
			/bin/sh "$root/etc/rc.common" "$root$i" disable
		else
			[ "$PKG_UPGRADE" != "1" ] && "$i" disable
			"$i" stop
		fi
	done
	return $ret
}
