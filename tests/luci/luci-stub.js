// A stand-in for the parts of LuCI's client runtime the wilife views use, for the headless-browser test
// only: E(), _() and String.format, view.extend, rpc.declare (answers from window.RPC_ANSWERS, calls
// recorded in window.RPC_CALLS), poll.add (recorded, run on demand), ui.addNotification, and a form
// module that renders sections and options from window.UCI with each option's validator applied.
// It does not stand in for LuCI's real widgets, themes, uci saving, session handling or translations.
'use strict';

String.prototype.format = function() {
	var args = arguments, i = 0;
	return this.replace(/%[sd]/g, function() { return String(args[i++]); });
};

window._ = function(s) { return s; };

window.E = function(tag, attrs, children) {
	var el = document.createElement(tag);
	Object.keys(attrs || {}).forEach(function(k) {
		var v = attrs[k];
		if (typeof v === 'function')
			el.addEventListener(k, v);
		else if (v != null)
			el.setAttribute(k, v);
	});
	(function add(c) {
		if (c == null || c === '') return;
		if (Array.isArray(c)) return c.forEach(add);
		el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
	})(children);
	return el;
};

window.RPC_CALLS = [];
window.POLLS = [];

var stubs = {
	view: {
		extend: function(proto) {
			var V = function() {};
			V.prototype = Object.assign({}, proto);
			return V;
		}
	},
	rpc: {
		declare: function(d) {
			return function() {
				var args = {};
				for (var i = 0; i < (d.params || []).length; i++)
					args[d.params[i]] = arguments[i];
				window.RPC_CALLS.push({ object: d.object, method: d.method, args: args });
				var answer = (window.RPC_ANSWERS || {})[d.object + '.' + d.method];
				if (answer === undefined)
					return Promise.reject(new Error('no answer for ' + d.object + '.' + d.method));
				return Promise.resolve(JSON.parse(JSON.stringify(answer)));
			};
		}
	},
	poll: { add: function(fn, interval) { window.POLLS.push(fn); } },
	ui: {
		addNotification: function(title, node, cls) {
			document.getElementById('notifications').appendChild(E('div', { 'class': 'alert-message ' + (cls || '') }, node));
		}
	},
	form: (function() {
		function Option(type, name, title, description) {
			this.type = type; this.option = name; this.title = title; this.description = description;
			this.choices = [];
		}
		Option.prototype.value = function(k, label) { this.choices.push([ k, label || k ]); };
		Option.prototype.widget = function(section) {
			var self = this;
			var value = section[this.option] != null ? section[this.option] : (this.default || '');
			var el;
			if (this.type === 'Flag')
				el = E('input', { 'type': 'checkbox' }), el.checked = value === '1';
			else if (this.type === 'ListValue') {
				el = E('select', {}, this.choices.map(function(c) { return E('option', { 'value': c[0] }, c[1]); }));
				el.value = value;
			} else if (this.type === 'Button')
				el = E('button', { 'class': 'cbi-button' }, this.inputtitle || this.title);
			else {
				el = E('input', { 'type': this.password ? 'password' : 'text', 'placeholder': this.placeholder || '' });
				el.value = value;
				if (this.choices.length) el.setAttribute('list', 'choices-' + this.option);
			}
			el.setAttribute('data-option', this.option);
			var check = this.validate ? this.validate(section['.name'], value) : true;
			if (check !== true) {
				el.classList.add('cbi-input-invalid');
				el.setAttribute('data-error', check);
			}
			return E('div', { 'class': 'cbi-value' }, [
				E('label', { 'class': 'cbi-value-title' }, this.title),
				E('div', { 'class': 'cbi-value-field' }, [ el,
					check !== true ? E('div', { 'class': 'cbi-value-error' }, check) : '',
					this.description ? E('div', { 'class': 'cbi-value-description' }, this.description) : '' ])
			]);
		};
		function Section(map, kind, args) {
			this.map = map; this.kind = kind; this.options = [];
			if (kind === 'NamedSection') { this.name = args[0]; this.stype = args[1]; this.title = args[2]; }
			else { this.stype = args[0]; this.title = args[1]; this.description = args[2]; }
		}
		Section.prototype.option = function(cls, name, title, description) {
			var o = new Option(cls.kind, name, title, description);
			o.map = this.map;
			this.options.push(o);
			return o;
		};
		Section.prototype.render = function() {
			var uci = window.UCI || {}, self = this;
			var sections = Object.keys(uci).map(function(k) { return uci[k]; }).filter(function(s) {
				return self.kind === 'NamedSection' ? s['.name'] === self.name : s['.type'] === self.stype;
			});
			if (self.kind === 'NamedSection' && !sections.length)
				sections = [ { '.name': self.name, '.type': self.stype } ];
			return E('fieldset', { 'class': 'cbi-section', 'data-section': self.stype }, [
				E('h3', {}, self.title),
				sections.map(function(s) {
					return E('div', { 'class': 'cbi-section-node' }, self.options.map(function(o) { return o.widget(s); }));
				})
			]);
		};
		function Map(config, title, description) {
			this.config = config; this.title = title; this.description = description; this.sections = [];
		}
		Map.prototype.section = function(cls) {
			var s = new Section(this, cls.kind, Array.prototype.slice.call(arguments, 1));
			this.sections.push(s);
			return s;
		};
		Map.prototype.render = function() {
			return Promise.resolve(E('div', { 'class': 'cbi-map' }, [
				E('h2', {}, this.title), E('div', { 'class': 'cbi-map-descr' }, this.description),
				this.sections.map(function(s) { return s.render(); })
			]));
		};
		var f = { Map: Map };
		[ 'NamedSection', 'TypedSection', 'Flag', 'ListValue', 'Value', 'Button' ].forEach(function(k) { f[k] = { kind: k }; });
		return f;
	})()
};

/** Loads a view's source as LuCI does: strip the 'require' lines, bind the modules, instantiate. */
window.loadView = function(source) {
	var names = [], re = /^\s*'require\s+([a-z.]+)';\s*$/mg, m;
	while ((m = re.exec(source)) !== null)
		names.push(m[1]);
	var body = source.replace(re, '');
	var factory = new Function(names.join(','), body);
	var View = factory.apply(null, names.map(function(n) {
		if (!stubs[n]) throw new Error('the harness has no stand-in for ' + n);
		return stubs[n];
	}));
	return new View();
};

/** load() then render(), as LuCI's view machinery does; resolves when the page is in the document. */
window.showView = function(source) {
	var v = loadView(source);
	window.VIEW = v;
	return Promise.resolve(v.load()).then(function(data) { return v.render(data); }).then(function(node) {
		var root = document.getElementById('view');
		root.innerHTML = '';
		root.appendChild(node);
		return true;
	});
};
