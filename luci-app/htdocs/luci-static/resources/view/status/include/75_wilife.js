'use strict';
'require baseclass';
'require wilife';

// Status → Overview: the verdict in a line, why not direct, the cameras present, and the way to the app.
// A failed call shows its reason in that line; nothing else on the overview depends on it.
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
		var why = d.error ? null : wilife.why(d);
		return E('div', { 'id': 'wilife-overview' }, [
			E('p', { 'class': d.error ? 'wilife-failed' : (d.direct_possible ? 'direct' : 'relay') }, [
				E('strong', {}, text(_('Remote viewing:') + ' ')),
				text(d.error ? _('unknown. %s').format(d.error) : wilife.verdict(d))
			]),
			why ? E('p', { 'class': 'wilife-why' }, text(why)) : '',
			cameras.length ? E('p', {}, text(_('Cameras present: %d of %d').format(present, cameras.length))) : '',
			E('p', {}, E('a', { 'href': L.url('admin/services/wilife/status') }, text(_('Open the WiLife camera status…'))))
		]);
	}
});
