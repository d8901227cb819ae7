'use strict';
'require view';
'require poll';
'require ui';
'require uci';
'require wilife';

// Everything comes from the agent through rpcd (ubus object luci.wilife); the browser never talks to the
// agent's own port. Each call resolves with an object, {error: "..."} when it failed (see wilife.js), and
// every value from the agent goes into the page as text (text()).
var callDiagnosis = wilife.declare('diagnosis');
var callMappings = wilife.declare('mappings');
var callCameras = wilife.declare('cameras');
var callStatus = wilife.declare('status');
var callRemedy = wilife.declare('remedy');
var callDeleteMapping = wilife.declare('delete_mapping', [ 'protocol', 'port' ]);
var callProbe = wilife.declare('probe');
var callLastProbe = wilife.declare('last_probe');
var callStart = wilife.declare('start');
var text = wilife.text;

// A session with only the read grant: LuCI shows the page, and the buttons that write are disabled.
var isReadonlyView = !L.hasViewPermission() || null;

function bytes(n) {
	var units = [ 'B', 'KiB', 'MiB', 'GiB', 'TiB' ], i = 0;
	n = +n || 0;
	while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
	return (i ? n.toFixed(1) : n) + ' ' + units[i];
}

function duration(s) {
	if (s == null)
		return _('until removed');
	s = +s;
	if (s < 60) return s + ' s';
	if (s < 3600) return Math.floor(s / 60) + ' min';
	if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
	return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
}

function ago(unix) {
	if (!unix)
		return _('never');
	return duration(Math.max(0, Math.floor(Date.now() / 1000) - unix)) + ' ' + _('ago');
}

/** A sentence from the agent, as a sentence: capital first letter, full stop. */
function sentence(s) {
	s = String(s == null ? '' : s);
	return s.charAt(0).toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? '' : '.');
}

function failed(title, answer) {
	return E('div', { 'class': 'cbi-section' }, [
		title ? E('h3', {}, text(title)) : '',
		E('p', { 'class': 'alert-message warning wilife-failed' }, text(answer.error))
	]);
}

var HOPS = {
	command_center: _('Command Center'),
	public_address: _('Public address, through the forward'),
	gateway: _('Gateway upstream')
};

function hopResult(h) {
	switch (h.verdict) {
	case 'answered': return _('Answered in %d ms').format(h.ms);
	case 'refused': return _('Refused: nothing listens on this port');
	// A timeout, or an error that came back at once (unreachable).
	case 'dropped': return h.ms >= 1900 ? _('No reply in %d s').format(Math.round(h.ms / 1000)) : _('Unreachable');
	default: return _('Not tried: %s').format(h.why || '');
	}
}

return view.extend({
	load: function() {
		return Promise.all([ callDiagnosis(), callMappings(), callCameras(), callStatus(), callLastProbe() ]).then(function(data) {
			// The remedy is asked for only while a hardware switch hides a camera.
			var hidden = (data[2].cameras || []).some(function(x) { return x.verdict == 'bypassed_by_switch'; });
			return hidden ? callRemedy().then(function(r) { return data.concat([ r ]); }) : data.concat([ null ]);
		});
	},

	/** A refused config reload: the agent runs on with the previous config, which the form no longer shows. */
	renderReloadError: function(s) {
		var err = !s.error && s.config ? s.config.reload_error : null;
		if (!err)
			return '';
		return E('div', { 'id': 'wilife-reload-error', 'class': 'alert-message danger' }, [
			E('strong', {}, text(_('The agent refused the last configuration change and keeps running with the previous configuration:'))),
			E('pre', {}, text(err))
		]);
	},

	/** The agent does not run: one box that says so and how to start it, instead of a failure in every section. */
	renderDown: function(s) {
		return E('div', { 'class': 'cbi-section', 'id': 'wilife-down' }, [
			E('h3', {}, text(_('The wilife-agent service is not running'))),
			E('p', {}, [
				text(_('Nothing on this page can be shown until it runs. Start it here, or on the router with ')),
				E('code', {}, text('service wilife start')), text('.')
			]),
			E('p', { 'class': 'alert-message warning wilife-failed' }, text(sentence(s.error))),
			E('button', {
				'class': 'cbi-button cbi-button-action important',
				'id': 'wilife-start',
				'disabled': isReadonlyView,
				'click': ui.createHandlerFn(this, 'handleStart')
			}, text(_('Start the service')))
		]);
	},

	/** The verdict in a few words, why (the first blocking reason), then the other reasons. */
	renderVerdict: function(d) {
		if (d.error)
			return failed(_('Remote viewing'), d);
		var why = wilife.why(d), first = (d.reasons || [])[0];
		var reasons = (d.reasons || []).filter(function(r) { return r.message !== why; }).map(function(r) {
			return E('li', { 'class': 'wilife-reason ' + r.severity, 'data-code': r.code }, text(r.message));
		});
		return E('div', { 'class': 'cbi-section', 'id': 'wilife-remote' }, [
			E('h3', {}, text(_('Remote viewing'))),
			E('p', { 'id': 'wilife-verdict', 'class': d.direct_possible ? 'direct' : 'relay', 'data-reason': first ? first.code : '' },
				E('strong', {}, text(wilife.verdict(d)))),
			why ? E('p', { 'id': 'wilife-why' }, text(why)) : '',
			d.direct_possible ? E('p', { 'id': 'wilife-summary' }, text(d.summary)) : '',
			reasons.length ? E('ul', { 'id': 'wilife-reasons' }, reasons) : ''
		]);
	},

	/** The end-to-end test: each hop the router tried along a viewer's path, and a button to test now. */
	renderProbe: function(p) {
		var r = p.error ? null : p.probe;
		var rows = (r ? r.hops : []).map(function(h) {
			return [ HOPS[h.hop] || h.hop, h.address || '-', h.external_port,
				E('span', { 'class': 'wilife-hop ' + h.verdict }, text(hopResult(h))) ];
		});
		return E('div', { 'class': 'cbi-section', 'id': 'wilife-probe' }, [
			E('h3', {}, text(_('End-to-end test'))),
			E('p', { 'class': 'cbi-section-descr' }, text(_('The router connects along the path a remote viewer\'s connection takes: to the Command Center, then through its own public address, and behind double NAT through the gateway\'s. It tests after every change of the ports, and when you ask (at most once every 10 s).'))),
			p.error ? E('p', { 'class': 'alert-message warning wilife-failed' }, text(p.error)) :
				wilife.table('wilife-probe-hops', [ _('Step'), _('Address'), _('External port'), _('Result') ], rows,
					r ? _('No port is forwarded: nothing to test.') : _('Not tested yet.')),
			r && r.problem ? E('p', { 'id': 'wilife-probe-problem', 'class': 'alert-message warning' }, text(sentence(r.problem))) : '',
			r ? E('p', { 'class': 'wilife-probe-at' }, text(_('Tested %s.').format(ago(r.at)))) : '',
			E('button', {
				'class': 'cbi-button cbi-button-action',
				'id': 'wilife-probe-run',
				'click': ui.createHandlerFn(this, 'handleProbe')
			}, text(_('Test now')))
		]);
	},

	renderMappings: function(m, d) {
		if (m.error)
			return failed(_('Port mappings'), m);
		var self = this, list = m.mappings || [];
		var rows = list.map(function(x) {
			return [
				x.internal_client + (x.owner ? ' (' + x.owner + ')' : ''),
				'TCP ' + x.external_port + (x.internal_port != x.external_port ? ' → ' + x.internal_port : ''),
				x.description,
				duration(x.lease_left_s),
				bytes(x.bytes),
				E('button', {
					'class': 'cbi-button cbi-button-remove',
					'data-port': x.external_port,
					'disabled': isReadonlyView,
					'click': ui.createHandlerFn(self, 'handleDelete', x.external_port)
				}, text(_('Delete')))
			];
		});
		// A mapping no viewer can use while the verdict is relay only: say so, and where to look.
		var unused = list.length && d && !d.error && !d.direct_possible;
		return E('div', { 'class': 'cbi-section', 'id': 'wilife-mappings' }, [
			E('h3', {}, text(_('Port mappings'))),
			unused ? E('p', { 'id': 'wilife-mappings-unused', 'class': 'alert-message warning' }, [
				text(_('These ports are mapped, but remote viewers cannot reach them yet. ')),
				E('a', { 'href': '#wilife-remote' }, text(_('See why, and what to do.')))
			]) : '',
			wilife.table('wilife-mappings-table', [ _('Client'), _('Port'), _('Description'), _('Lease left'), _('Traffic'), '' ],
				rows, _('No port is mapped.'))
		]);
	},

	renderCameras: function(c, remedy) {
		if (c.error)
			return failed(_('Cameras'), c);
		var rules = {
			enforced: _('seen by the router'),
			bypassed_by_switch: _('bypassed by the switch'),
			same_segment: _('not seen by the router'),
			unknown: _('not known yet')
		};
		var rows = (c.cameras || []).map(function(x) {
			return [
				x.name, x.mac, x.ip || '-',
				E('span', { 'class': x.present ? 'present' : 'absent' }, text(x.present ? _('present') : _('absent'))),
				ago(x.last_seen),
				bytes(x.traffic.to_command_center.bytes),
				E('span', { 'class': 'wilife-rules ' + x.verdict }, text(rules[x.verdict] || x.verdict))
			];
		});
		// One sentence for each camera whose traffic the rules cannot see.
		var said = (c.cameras || []).filter(function(x) {
			return x.verdict == 'bypassed_by_switch' || x.verdict == 'same_segment';
		}).map(function(x) {
			return E('p', { 'class': 'alert-message warning wilife-switching', 'data-verdict': x.verdict }, text(x.verdict_message));
		});
		return E('div', { 'class': 'cbi-section', 'id': 'wilife-cameras' }, [
			E('h3', {}, text(_('Cameras'))),
			wilife.table('wilife-cameras-table', [ _('Name'), _('MAC'), _('IP'), _('Present'), _('Last seen'), _('To the Command Center'), _('Camera rules') ],
				rows, _('No camera is configured.'))
		].concat(said, [ this.renderRemedy(remedy) ]));
	},

	/** The one-click remedy for cameras a hardware switch hides: what moves, then a confirmation. */
	renderRemedy: function(r) {
		if (!r)
			return '';
		if (r.error || !r.plan)
			return E('p', { 'id': 'wilife-remedy', 'class': 'wilife-remedy-none' }, text(r.error || r.reason));
		var self = this, p = r.plan;
		var notes = (p.notes || []).map(function(n) { return E('li', {}, text(n)); });
		var iso = p.isolation;
		return E('div', { 'id': 'wilife-remedy' }, [
			E('p', {}, text(_('The fix: move %s into a network of its own (%s, %s on %s). Traffic between the cameras and the Command Center then passes the router, where the camera rules apply; the router relays discovery (SSDP) between them.')
				.format(p.ports.join(', '), p.network, p.address, p.device))),
			notes.length ? E('ul', { 'class': 'wilife-remedy-notes' }, notes) : '',
			E('button', {
				'class': 'cbi-button cbi-button-action important',
				'id': 'wilife-remedy-move',
				'disabled': isReadonlyView,
				'click': function() { return self.confirmRemedy(_('Move the cameras to their own network'), p.changes, notes); }
			}, text(_('Move the cameras to their own network…'))),
			iso ? E('p', { 'class': 'wilife-isolation' }, text(iso.message)) : '',
			iso ? E('button', {
				'class': 'cbi-button',
				'id': 'wilife-remedy-isolate',
				'disabled': isReadonlyView,
				'click': function() { return self.confirmRemedy(_('Isolate the camera ports'), iso.changes, []); }
			}, text(_('Isolate the camera ports instead…'))) : ''
		]);
	},

	confirmRemedy: function(title, changes, notes) {
		var self = this;
		ui.showModal(title, [
			E('p', {}, text(_('This changes %d settings of the network, firewall and DHCP.').format(changes.length))),
			notes.length ? E('ul', {}, notes.map(function(n) { return n.cloneNode(true); })) : '',
			E('p', {}, text(_('OpenWrt applies it with rollback: unless this browser can still reach the router and confirms within the timeout, the router puts the previous settings back by itself.'))),
			E('div', { 'class': 'right' }, [
				E('button', { 'class': 'cbi-button', 'click': ui.hideModal }, text(_('Cancel'))), ' ',
				E('button', {
					'class': 'cbi-button cbi-button-positive important',
					'id': 'wilife-remedy-apply',
					'click': function() { return self.applyRemedy(changes); }
				}, text(_('Apply with rollback')))
			])
		]);
	},

	/** Stages the changes as uci.js does for any LuCI page, then applies them with rollback. */
	applyRemedy: function(changes) {
		var configs = [];
		changes.forEach(function(op) { if (configs.indexOf(op.config) < 0) configs.push(op.config); });
		return uci.load(configs).then(function() {
			changes.forEach(function(op) {
				if (op.op == 'add')
					return uci.add(op.config, op.type, op.section);
				var at = op.at, sid = at.section;
				if (sid == null) {
					var found = uci.sections(op.config, at.type).filter(function(s) { return s[at.option] == at.value; })[0];
					if (!found)
						throw new Error(_('No %s section with %s %s in %s').format(at.type, at.option, at.value, op.config));
					sid = found['.name'];
				}
				uci.set(op.config, sid, op.option, op.op == 'set_list' ? op.values : op.value);
			});
			return uci.save();
		}).then(function() {
			ui.hideModal();
			return ui.changes.apply(true);
		}).catch(function(err) {
			ui.hideModal();
			uci.unload(configs);
			ui.addNotification(null, E('p', {}, text(_('Nothing was changed: %s').format(err.message))), 'danger');
		});
	},

	/** Double NAT: what the gateway upstream does for this router, in one sentence (hidden while the WAN is public). */
	renderUpstream: function(s) {
		// A failed status call is said once, in the router section.
		var u = s.error ? null : s.upstream;
		if (!u || u.idle == 'wan_public')
			return '';
		var protocols = { pcp: 'PCP', natpmp: 'NAT-PMP', upnp: 'UPnP' };
		var st = u.standing || {}, at = u.gateway ? ' ' + _('at %s').format(u.gateway) : '', said;
		var proto = protocols[st.protocol] || st.protocol;
		var taken = u.taken || [], missing = (u.missing || []).filter(function(p) { return taken.indexOf(p) < 0; });
		if (u.idle == 'off')
			said = _('Not asked: carrying ports to the gateway is off (Settings, gateway upstream).');
		else if (u.idle == 'no_gateway')
			said = _('There is no default route through the WAN, so there is no gateway to ask.');
		else if (u.idle == 'no_wan_address')
			said = _('The WAN has no IPv4 address yet.');
		else if (u.idle)
			said = _('Nothing to forward yet: no port is mapped on this router.');
		else if (st.state == 'mapping')
			said = _('The gateway%s forwards %d port(s) to this router over %s; its public address is %s.')
				.format(at, (u.mappings || []).length, proto, st.external_address);
		else if (st.state == 'refused')
			said = _('The gateway%s refused over %s (result %s, %s): forward the ports on it by hand.').format(at, proto, st.code, st.name);
		else if (st.state == 'no_service')
			said = _('The gateway%s answers neither PCP, NAT-PMP nor UPnP: turn one of them on there, or forward the ports on it by hand.').format(at);
		else
			said = _('Asking the gateway%s…').format(at);
		var notes = [];
		if (taken.length)
			notes.push(_('Another device holds port(s) %s at the gateway: the Command Center is told to use another port.').format(taken.join(', ')));
		if (missing.length && !u.idle)
			notes.push(_('Not forwarded by the gateway yet: port(s) %s.').format(missing.join(', ')));
		var rows = (u.mappings || []).map(function(m) {
			return [ 'TCP ' + m.external_port + ' → ' + (u.wan_address || '?') + ':' + m.port,
				protocols[m.protocol] || m.protocol, duration(m.expires_in_s) ];
		});
		return E('div', { 'class': 'cbi-section', 'id': 'wilife-upstream', 'data-state': u.idle || st.state }, [
			E('h3', {}, text(_('Gateway upstream (double NAT)'))),
			E('p', { 'id': 'wilife-upstream-state' }, text(said)),
			notes.length ? E('ul', {}, notes.map(function(n) { return E('li', {}, text(n)); })) : '',
			rows.length ? wilife.table('wilife-upstream-table', [ _('Forward'), _('Protocol'), _('Expires in') ], rows) : ''
		]);
	},

	/** The agent and the router as it sees them: version, uptime, mode, WAN, firewall. */
	renderRouter: function(s) {
		if (s.error)
			return failed(_('Router'), s);
		var fw = s.firewall, r = fw.last_reconcile, w = s.wan || {};
		var modes = { upnp: _('UPnP: the Command Center asks for its port'), static: _('Static forwards'), off: _('Off: relay only') };
		var wan = (w.device || _('no device')) + ((w.ipv4 || []).length ? ', ' + w.ipv4.join(', ') : '') +
			(w.up === false ? ' (' + _('down') + ')' : '');
		var rows = [
			[ _('Agent version'), s.version ],
			[ _('Running for'), duration(s.uptime_s) ],
			[ _('Direct access'), s.enabled ? (modes[s.mode] || s.mode) : _('Disabled in the settings') ],
			[ _('WAN'), wan ],
			[ _('Firewall tables'), fw.tables.join(', ') + (fw.table_present ? '' : ' — ' + _('not in force')) ],
			[ _('firewall4 include'), fw.fw4_include.in_fw4_ruleset ? _('active') : _('not active: reinstall the package, then run fw4 reload') ],
			[ _('Last firewall update'), r ? _('%s (%s, %s)').format(r.result, r.reason, ago(r.at)) + (r.error ? ': ' + r.error : '') : _('none') ]
		];
		return E('div', { 'class': 'cbi-section', 'id': 'wilife-router' }, [
			E('h3', {}, text(_('Router'))),
			E('table', { 'class': 'table', 'id': 'wilife-router-table' }, rows.map(function(row) {
				return E('tr', { 'class': 'tr' }, [
					E('td', { 'class': 'td left', 'width': '33%' }, text(row[0])),
					E('td', { 'class': 'td left' }, text(row[1]))
				]);
			}))
		]);
	},

	update: function(data) {
		var node = this.node, self = this;
		while (node.firstChild)
			node.removeChild(node.firstChild);
		if (data[3].not_running) {
			node.appendChild(this.renderDown(data[3]));
			return;
		}
		// Each section on its own: an answer the view cannot read spoils that section only.
		[ [ 'renderReloadError', 3 ], [ 'renderVerdict', 0 ], [ 'renderProbe', 4 ], [ 'renderMappings', 1, 0 ],
		  [ 'renderCameras', 2, 5 ], [ 'renderUpstream', 3 ], [ 'renderRouter', 3 ] ].forEach(function(p) {
			var e;
			try {
				e = self[p[0]](data[p[1]], data[p[2]]);
			}
			catch (err) {
				e = failed('', { error: _('This part of the page could not be shown: %s').format(err.message) });
			}
			if (e)
				node.appendChild(e);
		});
	},

	refresh: function() {
		var self = this;
		return this.load().then(function(data) { self.update(data); });
	},

	/** An action's answer: a failure said in a notification (`failed`, with the agent's words), then the page again. */
	afterAction: function(res, failed, level) {
		if (res.error)
			ui.addNotification(null, E('p', {}, text(failed.format(res.error))), level);
		return this.refresh();
	},

	handleDelete: function(port) {
		var self = this;
		return callDeleteMapping('tcp', port).then(function(res) {
			return self.afterAction(res, _('The mapping was not deleted: %s'), 'danger');
		});
	},

	handleProbe: function() {
		var self = this;
		return callProbe().then(function(res) {
			return self.afterAction(res, _('The test did not run: %s'), 'warning');
		});
	},

	handleStart: function() {
		var self = this;
		return callStart().then(function(res) {
			if (res.error) {
				ui.addNotification(null, E('p', {}, text(_('The service did not start: %s').format(res.error))), 'danger');
				return;
			}
			// procd starts it; its API answers a moment later.
			return new Promise(function(done) { window.setTimeout(done, 2000); }).then(function() { return self.refresh(); });
		});
	},

	render: function(data) {
		var self = this;
		this.node = E('div', { 'id': 'wilife-status' });
		this.update(data);
		poll.add(function() { return self.refresh(); }, 5);
		return E('div', {}, [ E('h2', {}, text(_('WiLife cameras'))), this.node ]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
