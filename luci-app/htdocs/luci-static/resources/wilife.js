'use strict';
'require baseclass';
'require rpc';

// What the wilife views share ('require wilife'). Two rules of LuCI's client framework shape it:
// - E(tag, attrs, 'string') and cbi_update_table() insert a string as HTML. Every value from the agent
//   or the config (UPnP descriptions come from any LAN client) goes in through text(), as a text node.
// - A ubus call may resolve with a bare status number instead of an object (rpcd answers 2 when the plugin
//   printed no object, 7 on a timeout) and rejects when the session may not call it (-32002). call()
//   turns all of these into {error: '…'}, so one section can say so while the others render.
return baseclass.extend({
	/** A value as a text node, never markup. */
	text: function(value) {
		return document.createTextNode(value == null ? '' : String(value));
	},

	/** A luci.wilife method whose call always resolves with an object, {error: '…'} when it failed. */
	declare: function(method, params) {
		var fn = rpc.declare({ object: 'luci.wilife', method: method, params: params, expect: {} });
		return function() {
			return fn.apply(null, arguments).then(function(res) {
				if (typeof(res) == 'number')
					return { error: _('The wilife-agent service did not answer (ubus status %d: %s)').format(res, rpc.getStatusText(res)) };
				if (res == null || typeof(res) != 'object' || Array.isArray(res))
					return { error: _('The wilife-agent service gave no answer') };
				return res;
			}, function(err) {
				return { error: _('The call to the wilife-agent service failed: %s').format(err && err.message ? err.message : err) };
			});
		};
	},

	/**
	 * A LuCI table (the classes LuCI's own pages use, so the theme's stripes and phone layout apply),
	 * filled by cbi_update_table: each cell a node, or a value shown as text.
	 */
	table: function(id, titles, rows, placeholder) {
		var t = E('table', { 'class': 'table cbi-section-table', 'id': id }, [
			E('tr', { 'class': 'tr table-titles cbi-section-table-titles' }, titles.map(function(title) {
				return E('th', { 'class': 'th' }, [ title ]);
			}))
		]);
		var self = this;
		cbi_update_table(t, rows.map(function(cells) {
			return cells.map(function(c) { return c instanceof Node ? c : self.text(c); });
		}), placeholder ? E('em', {}, [ placeholder ]) : null);
		return t;
	},

	/** The verdict in a few words: direct (and where), or relay only. */
	verdict: function(d) {
		if (d.direct_possible && d.external)
			return _('Direct, via %s:%s').format(d.external.address, (d.external.ports || []).join(', '));
		if (d.direct_possible)
			return _('Direct is possible; the Command Center has not asked for its port yet');
		return _('Relay only');
	},

	/** Why not direct: the first blocking reason (the agent's own sentence), or null. */
	why: function(d) {
		var first = (d.reasons || []).filter(function(r) { return r.severity == 'blocking'; })[0];
		return d.direct_possible ? null : (first ? first.message : d.summary);
	}
});
