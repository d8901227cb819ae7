'use strict';
'require baseclass';
'require rpc';

// What the wilife views share ('require wilife'). Two rules of LuCI's client framework shape it:
// - E(tag, attrs, 'string') inserts the string as HTML. Every value from the agent or the config (UPnP
//   descriptions come from any LAN client) goes in through text(), as a text node.
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

	/** The verdict in one sentence. */
	verdict: function(d) {
		var first = (d.reasons || [])[0];
		if (d.direct_possible && d.external)
			return _('Remote viewing: direct, via %s:%s').format(d.external.address, (d.external.ports || []).join(', '));
		if (d.direct_possible)
			return _('Remote viewing: direct is possible; the Command Center has not mapped a port yet');
		return _('Remote viewing: relay only — %s').format(first ? first.message : d.summary);
	}
});
