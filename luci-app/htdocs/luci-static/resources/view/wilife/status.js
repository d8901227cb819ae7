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

/** A table; a cell is a node or a value (inserted as text). */
function table(titles, rows, empty) {
	var t = E('table', { 'class': 'table' }, [
		E('tr', { 'class': 'tr table-titles' }, titles.map(function(title) {
			return E('th', { 'class': 'th' }, text(title));
		}))
	]);
	if (!rows.length)
		t.appendChild(E('tr', { 'class': 'tr placeholder' }, [
			E('td', { 'class': 'td', 'colspan': titles.length }, E('em', {}, text(empty)))
		]));
	rows.forEach(function(cells) {
		t.appendChild(E('tr', { 'class': 'tr' }, cells.map(function(c) {
			return E('td', { 'class': 'td' }, c instanceof Node ? c : text(c));
		})));
	});
	return t;
}

function failed(title, answer) {
	return E('div', { 'class': 'cbi-section' }, [
		title ? E('h3', {}, text(title)) : '',
		E('p', { 'class': 'alert-message warning wilife-failed' }, text(answer.error))
	]);
}

return view.extend({
	load: function() {
		return Promise.all([ callDiagnosis(), callMappings(), callCameras(), callStatus() ]).then(function(data) {
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

	/** The verdict in one sentence, then the reasons. */
	renderVerdict: function(d) {
		if (d.error)
			return failed(_('Remote viewing'), d);
		var first = (d.reasons || [])[0];
		// The first blocking reason is the headline already; the list shows the others.
		var reasons = (d.reasons || []).filter(function(r) { return d.direct_possible || r !== first; }).map(function(r) {
			return E('li', { 'class': 'wilife-reason ' + r.severity, 'data-code': r.code }, text(r.message));
		});
		return E('div', { 'class': 'cbi-section' }, [
			E('h3', { 'id': 'wilife-verdict', 'class': d.direct_possible ? 'direct' : 'relay', 'data-reason': first ? first.code : '' },
				text(wilife.verdict(d))),
			d.direct_possible ? E('p', { 'id': 'wilife-summary' }, text(d.summary)) : '',
			reasons.length ? E('ul', { 'id': 'wilife-reasons' }, reasons) : ''
		]);
	},

	renderMappings: function(m) {
		if (m.error)
			return failed(_('Port mappings'), m);
		var self = this;
		var rows = (m.mappings || []).map(function(x) {
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
					'click': function() { return self.handleDelete(x.external_port); }
				}, text(_('Delete')))
			];
		});
		return E('div', { 'class': 'cbi-section' }, [
			E('h3', {}, text(_('Port mappings'))),
			table([ _('Client'), _('Port'), _('Description'), _('Lease left'), _('Traffic'), '' ], rows,
				_('No port is mapped.'))
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
		return E('div', { 'class': 'cbi-section' }, [
			E('h3', {}, text(_('Cameras'))),
			table([ _('Name'), _('MAC'), _('IP'), _('Present'), _('Last seen'), _('To the Command Center'), _('Camera rules') ], rows,
				_('No camera is configured.'))
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

	/** Double NAT: what the gateway upstream forwards to this router (hidden while the WAN is public). */
	renderUpstream: function(s) {
		// A failed status call is said once, in the firewall section.
		var u = s.error ? null : s.upstream;
		if (!u || u.idle == 'wan_public')
			return '';
		var protocols = { pcp: 'PCP', natpmp: 'NAT-PMP', upnp: 'UPnP' };
		var st = u.standing || {}, state;
		if (u.idle == 'off')
			state = _('not asked (mode off)');
		else if (u.idle == 'no_gateway')
			state = _('no default route through the WAN');
		else if (u.idle)
			state = _('nothing to forward yet');
		else if (st.state == 'mapping')
			state = _('forwards for this router (%s)').format(protocols[st.protocol] || st.protocol);
		else if (st.state == 'refused')
			state = _('refused (%s result %s, %s)').format(protocols[st.protocol] || st.protocol, st.code, st.name);
		else if (st.state == 'no_service')
			state = _('answers neither PCP nor NAT-PMP');
		else
			state = _('asking');
		var rows = (u.mappings || []).map(function(m) {
			return [ 'TCP ' + m.external_port + ' → ' + (u.wan_address || '?') + ':' + m.port,
				protocols[m.protocol] || m.protocol, duration(m.expires_in_s) ];
		});
		return E('div', { 'class': 'cbi-section', 'id': 'wilife-upstream', 'data-state': u.idle || st.state }, [
			E('h3', {}, text(_('Gateway upstream (double NAT)'))),
			table([ _('Gateway'), _('State'), _('External address'), _('Not forwarded yet'), _('Taken there by another host') ], [[
				u.gateway || _('none'),
				state,
				st.external_address || '-',
				(u.missing || []).length ? (u.missing || []).join(', ') : '-',
				(u.taken || []).length ? (u.taken || []).join(', ') : '-'
			]], ''),
			rows.length ? table([ _('Forward'), _('Protocol'), _('Expires in') ], rows, '') : ''
		]);
	},

	renderFirewall: function(s) {
		if (s.error)
			return failed(_('Firewall'), s);
		var fw = s.firewall, r = fw.last_reconcile;
		return E('div', { 'class': 'cbi-section' }, [
			E('h3', {}, text(_('Firewall'))),
			table([ _('Tables'), _('In force'), _('fw4 include'), _('Last update') ], [[
				fw.tables.join(', '),
				fw.table_present ? _('yes') : _('NO'),
				fw.fw4_include.in_fw4_ruleset ? _('active') : _('NOT ACTIVE'),
				r ? r.result + ' (' + r.reason + ', ' + ago(r.at) + ')' + (r.error ? ': ' + r.error : '') : _('none')
			]], '')
		]);
	},

	update: function(data) {
		var node = this.node, self = this;
		while (node.firstChild)
			node.removeChild(node.firstChild);
		// Each section on its own: an answer the view cannot read spoils that section only.
		[ [ 'renderReloadError', 3 ], [ 'renderVerdict', 0 ], [ 'renderMappings', 1 ], [ 'renderCameras', 2, 4 ],
		  [ 'renderFirewall', 3 ], [ 'renderUpstream', 3 ] ].forEach(function(p) {
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

	handleDelete: function(port) {
		var self = this;
		return callDeleteMapping('tcp', port).then(function(res) {
			if (res.error)
				ui.addNotification(null, E('p', {}, text(_('The mapping was not deleted: %s').format(res.error))), 'danger');
			return self.load().then(function(data) { self.update(data); });
		});
	},

	render: function(data) {
		var self = this;
		this.node = E('div', { 'id': 'wilife-status' });
		this.update(data);
		poll.add(function() {
			return self.load().then(function(d) { self.update(d); });
		}, 5);
		return E('div', {}, [ E('h2', {}, text(_('WiLife cameras'))), this.node ]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
