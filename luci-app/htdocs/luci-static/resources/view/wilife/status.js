'use strict';
'require view';
'require rpc';
'require poll';
'require ui';

// Everything comes from the agent through rpcd (ubus object luci.wilife); the browser never talks to the
// agent's own port. Each answer is a JSON object; {error: "..."} when the agent could not answer.
var callDiagnosis = rpc.declare({ object: 'luci.wilife', method: 'diagnosis', expect: {} });
var callMappings = rpc.declare({ object: 'luci.wilife', method: 'mappings', expect: {} });
var callCameras = rpc.declare({ object: 'luci.wilife', method: 'cameras', expect: {} });
var callStatus = rpc.declare({ object: 'luci.wilife', method: 'status', expect: {} });
var callDeleteMapping = rpc.declare({
	object: 'luci.wilife',
	method: 'delete_mapping',
	params: [ 'protocol', 'port' ],
	expect: {}
});

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

function table(titles, rows, empty) {
	var t = E('table', { 'class': 'table' }, [
		E('tr', { 'class': 'tr table-titles' }, titles.map(function(title) {
			return E('th', { 'class': 'th' }, title);
		}))
	]);
	if (!rows.length)
		t.appendChild(E('tr', { 'class': 'tr placeholder' }, [
			E('td', { 'class': 'td', 'colspan': titles.length }, E('em', {}, empty))
		]));
	rows.forEach(function(cells) {
		t.appendChild(E('tr', { 'class': 'tr' }, cells.map(function(c) {
			return E('td', { 'class': 'td' }, c);
		})));
	});
	return t;
}

function failed(answer) {
	return E('p', { 'class': 'alert-message warning' }, _('The agent did not answer: %s').format(answer.error));
}

return view.extend({
	load: function() {
		return Promise.all([ callDiagnosis(), callMappings(), callCameras(), callStatus() ]);
	},

	/** The verdict in one sentence, then the reasons. */
	renderVerdict: function(d) {
		if (d.error)
			return failed(d);
		var headline, first = (d.reasons || [])[0];
		if (d.direct_possible && d.external)
			headline = _('Remote viewing: direct, via %s:%s').format(d.external.address, d.external.ports.join(', '));
		else if (d.direct_possible)
			headline = _('Remote viewing: direct is possible; the Command Center has not mapped a port yet');
		else
			headline = _('Remote viewing: relay only — %s').format(first ? first.message : d.summary);
		// The first blocking reason is the headline already; the list shows the others.
		var reasons = (d.reasons || []).filter(function(r) { return d.direct_possible || r !== first; }).map(function(r) {
			return E('li', { 'class': 'wilife-reason ' + r.severity, 'data-code': r.code }, r.message);
		});
		return E('div', { 'class': 'cbi-section' }, [
			E('h3', { 'id': 'wilife-verdict', 'class': d.direct_possible ? 'direct' : 'relay', 'data-reason': first ? first.code : '' }, headline),
			d.direct_possible ? E('p', { 'id': 'wilife-summary' }, d.summary) : '',
			reasons.length ? E('ul', { 'id': 'wilife-reasons' }, reasons) : ''
		]);
	},

	renderMappings: function(m) {
		if (m.error)
			return failed(m);
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
					'click': function() { return self.handleDelete(x.external_port); }
				}, _('Delete'))
			];
		});
		return E('div', { 'class': 'cbi-section' }, [
			E('h3', {}, _('Port mappings')),
			table([ _('Client'), _('Port'), _('Description'), _('Lease left'), _('Traffic'), '' ], rows,
				_('No port is mapped.'))
		]);
	},

	renderCameras: function(c) {
		if (c.error)
			return failed(c);
		var rows = (c.cameras || []).map(function(x) {
			return [
				x.name, x.mac, x.ip || '-',
				E('span', { 'class': x.present ? 'present' : 'absent' }, x.present ? _('present') : _('absent')),
				ago(x.last_seen),
				bytes(x.traffic.to_command_center.bytes)
			];
		});
		return E('div', { 'class': 'cbi-section' }, [
			E('h3', {}, _('Cameras')),
			table([ _('Name'), _('MAC'), _('IP'), _('Present'), _('Last seen'), _('To the Command Center') ], rows,
				_('No camera is configured.'))
		]);
	},

	renderFirewall: function(s) {
		if (s.error)
			return failed(s);
		var fw = s.firewall, r = fw.last_reconcile;
		return E('div', { 'class': 'cbi-section' }, [
			E('h3', {}, _('Firewall')),
			table([ _('Tables'), _('In force'), _('fw4 include'), _('Last update') ], [[
				fw.tables.join(', '),
				fw.table_present ? _('yes') : _('NO'),
				fw.fw4_include.in_fw4_ruleset ? _('active') : _('NOT ACTIVE'),
				r ? r.result + ' (' + r.reason + ', ' + ago(r.at) + ')' + (r.error ? ': ' + r.error : '') : _('none')
			]], '')
		]);
	},

	update: function(data) {
		var node = this.node;
		while (node.firstChild)
			node.removeChild(node.firstChild);
		[ this.renderVerdict(data[0]), this.renderMappings(data[1]), this.renderCameras(data[2]),
		  this.renderFirewall(data[3]) ].forEach(function(e) { node.appendChild(e); });
	},

	handleDelete: function(port) {
		var self = this;
		return callDeleteMapping('tcp', port).then(function(res) {
			if (res && res.error)
				ui.addNotification(null, E('p', {}, res.error), 'danger');
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
		return E('div', {}, [ E('h2', {}, _('WiLife cameras')), this.node ]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
