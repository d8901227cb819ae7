# Stand-in for OpenWrt's /lib/functions.sh, for the tests only: the two functions the package's
# maintainer scripts call, doing what OpenWrt's do (package/base-files/files/lib/functions.sh):
# default_postinst: on a running router (no IPKG_INSTROOT) run the package's uci-defaults (each in a
#   subshell; removed only when it exits 0), then the opkg postinst-pkg body, then for each init script
#   `enable` (not on upgrade) and `start`; in an image build only `enable`.
# default_prerm: the opkg prerm-pkg body, then each init script's `disable` (not on upgrade) and `stop`.
# Init scripts are run as OpenWrt runs them: sh /etc/rc.common SCRIPT ACTION.
default_postinst() {
	# (apk's post-install exports root and pkgname and passes no arguments)
	local root="${IPKG_INSTROOT}" pkgname="${pkgname:-$(basename "${1%.*}")}" ret=0 i
	local filelist="$root/usr/lib/opkg/info/$pkgname.list"
	if [ -z "$root" ]; then
		for i in $(grep -s "^/etc/uci-defaults/" "$filelist"); do
			[ -f "$i" ] && (cd "$(dirname "$i")" && . "$i") && rm -f "$i"
		done
		uci commit
		rm -f /tmp/luci-indexcache.*
	fi
	if [ -f "$root/usr/lib/opkg/info/$pkgname.postinst-pkg" ]; then
		(. "$root/usr/lib/opkg/info/$pkgname.postinst-pkg")
		ret=$?
	fi
	for i in $(grep -s "^/etc/init.d/" "$filelist"); do
		if [ -n "$root" ]; then
			sh "$root/etc/rc.common" "$root$i" enable
		else
			[ "$PKG_UPGRADE" != 1 ] && sh /etc/rc.common "$i" enable
			sh /etc/rc.common "$i" start
		fi
	done
	return $ret
}

default_prerm() {
	local root="${IPKG_INSTROOT}" pkgname="$(basename "${1%.*}")" ret=0 i
	local filelist="$root/usr/lib/opkg/info/$pkgname.list"
	if [ -f "$root/usr/lib/opkg/info/$pkgname.prerm-pkg" ]; then
		(. "$root/usr/lib/opkg/info/$pkgname.prerm-pkg")
		ret=$?
	fi
	for i in $(grep -s "^/etc/init.d/" "$filelist"); do
		if [ -n "$root" ]; then
			sh "$root/etc/rc.common" "$root$i" disable
		else
			[ "$PKG_UPGRADE" != 1 ] && sh /etc/rc.common "$i" disable
			sh /etc/rc.common "$i" stop
		fi
	done
	return $ret
}
