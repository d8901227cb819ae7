'use strict';
'require view';
'require form';
'require rpc';

// The agent's config (/etc/config/wilife) as a LuCI form. Save & Apply commits it; procd's reload trigger
// then sends the agent SIGHUP, which re-reads it (a bad config is refused and the old one stays in force).
// Every Flag has rmempty = false: LuCI deletes a Flag equal to its default on save, and the shipped config
// states them all, so an unchanged form would otherwise stage changes.
var callHostHints = rpc.declare({ object: 'luci-rpc', method: 'getHostHints', expect: {} });

// The same rules as `wilife-agent check`.
function port(section_id, value) {
	if (value == null || value === '')
		return true;
	return (/^[0-9]{1,5}$/.test(value) && +value >= 1 && +value <= 65535) ? true :
		_('Use a port number from 1 to 65535');
}

function portRange(section_id, value) {
	var m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(value || '');
	if (!m)
		return _('Use a port or a range FIRST-LAST, e.g. 20570-20575');
	var a = +m[1], b = m[2] != null ? +m[2] : a;
	if (a < 1 || b > 65535)
		return _('Use ports from 1 to 65535');
	return a <= b ? true : _('The range is reversed');
}

/** A whole number from min to max, or empty (the default). */
function number(min, max) {
	return function(section_id, value) {
		return (!value || (/^[0-9]+$/.test(value) && +value >= min && +value <= max)) ? true :
			_('Use a number from %d to %d').format(min, max);
	};
}

/** The LAN's known hosts as choices: value MAC or IP, label with the host name (MACs in lower case, as LuCI shows them). */
function hostChoices(option, hosts, by) {
	Object.keys(hosts || {}).sort().forEach(function(key) {
		var h = hosts[key], mac = key.toLowerCase(), ip = (h.ipaddrs || h.ipv4 || [])[0];
		var label = (h.name ? h.name + ' ' : '') + '(' + (by == 'mac' ? (ip || mac) : mac) + ')';
		if (by == 'mac')
			option.value(mac, mac + ' ' + label);
		else if (ip)
			option.value(ip, ip + ' ' + label);
	});
}

return view.extend({
	load: function() {
		return callHostHints().catch(function() { return {}; });
	},

	render: function(hosts) {
		var m, s, o;

		m = new form.Map('wilife', _('WiLife cameras'),
			_('What the WiLife / Logitech Alert camera system needs from this router: direct remote viewing, camera isolation and outbound access.'));

		s = m.section(form.NamedSection, 'main', 'agent', _('General'),
			_('Scripts change mappings through the JSON API with the token in /etc/wilife/api_token, which only root can read.'));
		o = s.option(form.Flag, 'enabled', _('Enabled'));
		o.default = '1';
		o.rmempty = false;
		o = s.option(form.ListValue, 'direct_access', _('Direct remote viewing'),
			_('UPnP: the Command Center maps its port itself. Static: the ports are always forwarded to one Command Center. Off: relay mode only.'));
		o.value('upnp', _('UPnP (recommended)'));
		o.value('static', _('Static forwards'));
		o.value('off', _('Off (relay only)'));
		o.default = 'upnp';
		o = s.option(form.Value, 'presence_timeout', _('Presence timeout (s)'),
			_('A camera or Command Center not seen for this long is shown as absent.'));
		o.placeholder = '300';
		o.validate = number(1, 86400);

		s = m.section(form.NamedSection, 'direct', 'direct', _('Direct-mode ports'));
		o = s.option(form.Value, 'ports', _('Port range'));
		o.placeholder = '20570-20575';
		o.validate = function(section_id, value) { return value ? portRange(section_id, value) : true; };
		o = s.option(form.Value, 'custom_port', _('Custom port'), _('One more direct-mode port, outside the range.'));
		o.validate = port;
		o = s.option(form.Flag, 'reflection', _('LAN clients may use the WAN address'));
		o.default = '1';
		o.rmempty = false;

		// Tables, as LuCI lists hosts: a row each, Add opens the new one in a dialog and stages it
		// only once it is valid (a camera without a MAC, which `wilife-agent check` refuses, never).
		s = m.section(form.GridSection, 'command_center', _('Command Center PCs'),
			_('No PC may map ports until it is listed here. Give its IP address, its MAC address, or both.'));
		s.anonymous = true;
		s.addremove = true;
		o = s.option(form.Value, 'name', _('Name'));
		o.editable = true;
		o = s.option(form.Value, 'ip', _('IP address'));
		o.editable = true;
		o.datatype = 'ip4addr("nomask")';
		o.validate = function(section_id, value) {
			return (value || this.section.formvalue(section_id, 'mac')) ? true :
				_('Give the PC\'s IP address or MAC address (or both)');
		};
		hostChoices(o, hosts, 'ip');
		o = s.option(form.Value, 'mac', _('MAC address'));
		o.editable = true;
		o.datatype = 'macaddr';
		hostChoices(o, hosts, 'mac');

		s = m.section(form.GridSection, 'camera', _('Cameras'),
			_('Cameras are known by MAC address; give an IP address only if the camera has a fixed one.'));
		s.anonymous = true;
		s.addremove = true;
		o = s.option(form.Value, 'name', _('Name'));
		o.editable = true;
		o = s.option(form.Value, 'mac', _('MAC address'));
		o.editable = true;
		o.datatype = 'macaddr';
		o.rmempty = false;
		hostChoices(o, hosts, 'mac');
		o = s.option(form.Value, 'ip', _('Fixed IP address'));
		o.editable = true;
		o.datatype = 'ip4addr("nomask")';

		s = m.section(form.NamedSection, 'cameras', 'camera_rules', _('Camera rules'));
		o = s.option(form.Flag, 'isolation', _('Isolate cameras'),
			_('Cameras reach only the Command Center (and the router\'s DHCP); only the Command Center reaches them.'));
		o.default = '1';
		o.rmempty = false;
		o = s.option(form.ListValue, 'video_port', _('Video port'));
		o.value('22211', _('22211 (WiLife 2.x)'));
		o.value('22210', _('22210 (older LukWerks cameras)'));
		o.default = '22211';
		o = s.option(form.Flag, 'dns', _('Cameras may use the router\'s DNS'));
		o.rmempty = false;

		s = m.section(form.NamedSection, 'outbound', 'outbound', _('Outbound allowances'),
			_('For networks where the LAN may not reach the internet freely.'));
		o = s.option(form.Flag, 'wilife_online', _('WiLife Online (TCP 80, 443, 5222)'));
		o.default = '1';
		o.rmempty = false;
		o = s.option(form.Flag, 'relay', _('Relay viewing (TCP 80)'));
		o.default = '1';
		o.rmempty = false;
		o = s.option(form.Flag, 'email', _('E-mail notifications'));
		o.default = '1';
		o.rmempty = false;
		o = s.option(form.Value, 'smtp_port', _('SMTP port'));
		o.placeholder = '25';
		o.validate = port;
		o = s.option(form.Flag, 'remote_client', _('Remote viewing client on the LAN (TCP 80, 443, 554, 1755, direct ports)'));
		o.rmempty = false;

		s = m.section(form.NamedSection, 'upnp', 'upnp', _('UPnP'),
			_('How far the Command Center\'s UPnP requests may go (mode UPnP only).'));
		s.addremove = true;
		o = s.option(form.Flag, 'any_lan_host', _('Any LAN host may map ports'),
			_('Off: only the Command Center PCs listed above. On: any LAN host, to itself only.'));
		o.rmempty = false;
		o = s.option(form.Value, 'max_per_client', _('Mappings per host'));
		o.placeholder = '2';
		o.validate = number(1, 64);
		o = s.option(form.Value, 'max_lease', _('Longest lease (s)'), _('0: no limit.'));
		o.placeholder = '0';
		o.validate = number(0, 31536000);
		o = s.option(form.Flag, 'same_port', _('Internal port must equal the external one'));
		o.default = '1';
		o.rmempty = false;
		o = s.option(form.Value, 'port', _('IGD port'), _('TCP port of the UPnP service on the LAN.'));
		o.placeholder = '5431';
		o.validate = port;
		o = s.option(form.Value, 'notify_interval', _('Announcement interval (s)'));
		o.placeholder = '300';
		o.validate = number(30, 86400);

		s = m.section(form.NamedSection, 'upstream', 'upstream', _('Gateway upstream (double NAT)'),
			_('When this router\'s WAN address is private, the router in front of it is asked to forward the same ports (PCP, NAT-PMP or its UPnP).'));
		s.addremove = true;
		o = s.option(form.ListValue, 'mode', _('Ask the gateway'));
		o.value('auto', _('When the WAN address is private (recommended)'));
		o.value('enabled', _('Always'));
		o.value('off', _('Never'));
		o.default = 'auto';
		o = s.option(form.Value, 'lease', _('Lease asked for (s)'), _('Renewed at half of what the gateway grants.'));
		o.placeholder = '3600';
		o.validate = number(120, 86400);

		return m.render();
	}
});
