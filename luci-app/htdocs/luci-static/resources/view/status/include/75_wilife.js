'use strict';
'require baseclass';
'require wilife';

// Status → Overview: the verdict in one line and the cameras present. A failed call shows its reason in
// that line; nothing else on the overview depends on it.
var callDiagnosis = wilife.declare('diagnosis');
var callCameras = wilife.declare('cameras');
var text = wilife.text;

return baseclass.extend({
	title: _('WiLife cameras'),

	load: function() {
		return Promise.all([ callDiagnosis(), callCameras() ]);
	},

	render: function(data) {
		var d = data[0], c = data[1];
		var cameras = (!c.error && Array.isArray(c.cameras)) ? c.cameras : [];
		var present = cameras.filter(function(x) { return x.present; }).length;
		return E('div', { 'id': 'wilife-overview' }, [
			E('p', { 'class': d.error ? 'wilife-failed' : (d.direct_possible ? 'direct' : 'relay') },
				text(d.error ? _('Remote viewing: unknown — %s').format(d.error) : wilife.verdict(d))),
			cameras.length ? E('p', {}, text(_('Cameras present: %d of %d').format(present, cameras.length))) : ''
		]);
	}
});
