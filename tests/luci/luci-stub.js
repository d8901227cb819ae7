// A stand-in for the parts of LuCI's client runtime the wilife views use, for the headless-browser test
// only. Where it stands in, it behaves as the real framework does (luci.js, rpc.js, form.js, uci.js and
// libuci, read in openwrt/luci and openwrt/uci), including the traps:
// - E(tag, attrs, 'string') inserts the string as HTML (dom.append: innerHTML); in an array, a string
//   becomes a text node;
// - rpc.declare(): window.RPC_ANSWERS['object.method'] is the answer (after window.RPC_DELAY[...] ms). A number is a bare ubus status
//   (rpcd's answer when the plugin printed no object, 7 on a timeout), handed to the view as it is with
//   `expect: {}`; {"$error": [code, message]} rejects as rpc.js does (-32002 "Access denied"). Calls are
//   recorded in window.RPC_CALLS;
// - poll.add() runs the function at once, then on demand (window.POLLS);
// - L.hasViewPermission() is false and every form.Map is read-only when window.READONLY is set (a session
//   with the read grant only);
// - form: options render from window.UCI with their validators applied; Map.save() parses as form.js
//   does (a Flag equal to its default with rmempty is deleted, an empty Value is deleted with rmempty and
//   refused without) and records in window.UCI_CHANGES what libuci would stage (setting an option to its
//   own value stages nothing, deleting an existing option does).
// - cbi_update_table(table, rows, placeholder) fills a table as ui.Table.update does: a row per entry
//   (`tr.tr.cbi-rowstyle-1/2`), each cell `td.td` with `data-title` from its column's heading (LuCI's
//   phone layout shows it), a string cell inserted as HTML (the same trap as E()), a placeholder row
//   when there is none;
// - ui.createHandlerFn(ctx, fn, ...) gives a click handler that marks the button `spinning` and
//   disabled until fn's promise settles;
// - form.GridSection renders its sections as table rows; Add puts a new section into the form only
//   and opens it in a dialog: Save validates it (a refusal keeps the dialog and stages nothing),
//   Dismiss takes the new section out again (form.js handleAdd / handleModalCancel).
// It does not stand in for LuCI's real widgets, themes, session handling or translations.
'use strict';

String.prototype.format = function() {
	var args = arguments, i = 0;
	return this.replace(/%([sd%])/g, function(m, t) {
		if (t === '%')
			return '%';
		var v = args[i++];
		return t === 'd' ? Math.floor(+v || 0).toFixed(0) : String(v);
	});
};

window._ = function(s) { return s; };

window.L = {
	env: {},
	hasViewPermission: function() { return !window.READONLY; },
	/** luci.js url(): the path under LuCI's script URL. */
	url: function() {
		return '/cgi-bin/luci/' + Array.prototype.slice.call(arguments).join('/');
	}
};

/** cbi.js cbi_update_table over ui.Table.update, as they are (see the header). */
window.cbi_update_table = function(table, data, placeholder) {
	var target = (table instanceof Node) ? table : document.querySelector(table);
	if (!target)
		return;
	var headings = Array.prototype.slice.call(target.firstElementChild.querySelectorAll('th'));
	var rows = target.querySelectorAll('tr'), n = 0;
	(data || []).forEach(function(row) {
		var tr = E('tr', { 'class': 'tr' });
		for (var i = 0; i < headings.length; i++) {
			var text = (headings[i].innerText || '').trim();
			var cell = Array.isArray(row[i]) ? row[i][1] : row[i];
			tr.appendChild(E('td', { 'class': 'td', 'data-title': text !== '' ? text : null },
				cell != null ? cell : ''));
		}
		tr.classList.add('cbi-rowstyle-' + ((n % 2) ? 2 : 1));
		if (rows[n + 1])
			target.replaceChild(tr, rows[n + 1]);
		else
			target.appendChild(tr);
		n++;
	});
	while (rows[++n])
		target.removeChild(rows[n]);
	if (placeholder && target.firstElementChild === target.lastElementChild)
		target.appendChild(E('tr', { 'class': 'tr placeholder' }, [ E('td', { 'class': 'td' }, placeholder) ]));
};

/** luci.js dom.create() and dom.append(), as they are. */
window.E = function(tag, attrs, data) {
	if (!(attrs instanceof Object) || Array.isArray(attrs))
		data = attrs, attrs = null;
	var el = document.createElement(tag);
	for (var k in attrs) {
		if (!attrs.hasOwnProperty(k) || attrs[k] == null)
			continue;
		if (typeof attrs[k] === 'function')
			el.addEventListener(k, attrs[k]);
		else if (typeof attrs[k] === 'object')
			el.setAttribute(k, JSON.stringify(attrs[k]));
		else
			el.setAttribute(k, attrs[k]);
	}
	(function append(children) {
		if (Array.isArray(children)) {
			for (var i = 0; i < children.length; i++)
				if (children[i] instanceof Node)
					el.appendChild(children[i]);
				else
					el.appendChild(document.createTextNode('' + children[i]));
		}
		else if (typeof children === 'function')
			append(children(el));
		else if (children instanceof Node)
			el.appendChild(children);
		else if (children != null)
			el.innerHTML = '' + children;
	})(data);
	return el;
};

window.RPC_CALLS = [];
window.POLLS = [];
window.UCI_CHANGES = [];
window.UCI_STAGED = [];
window.APPLIED = [];

function extend(proto) {
	var C = function() {};
	C.prototype = Object.assign({}, proto);
	return C;
}

var stubs = {
	baseclass: { extend: extend },
	view: { extend: extend },
	rpc: {
		declare: function(d) {
			return function() {
				var args = {};
				for (var i = 0; i < (d.params || []).length; i++)
					args[d.params[i]] = arguments[i];
				window.RPC_CALLS.push({ object: d.object, method: d.method, args: args });
				var answer = (window.RPC_ANSWERS || {})[d.object + '.' + d.method];
				if (answer === undefined)
					return Promise.reject(new Error('the harness has no answer for ' + d.object + '.' + d.method));
				if (answer && answer.$error) {
					var err = new Error('RPC call to %s/%s failed with error %d: %s'.format(d.object, d.method,
						answer.$error[0], answer.$error[1]));
					err.name = 'RPCError';
					return Promise.reject(err);
				}
				var ret = JSON.parse(JSON.stringify(answer));
				// rpc.js: the first key of `expect` selects and type-checks; `expect: {}` has none.
				for (var key in d.expect || {}) {
					if (ret != null && key != '')
						ret = ret[key];
					if (ret == null || Object.prototype.toString.call(ret) != Object.prototype.toString.call(d.expect[key]))
						ret = d.expect[key];
					break;
				}
				// window.RPC_DELAY['object.method']: an answer that takes this many ms (a slow router).
				var delay = (window.RPC_DELAY || {})[d.object + '.' + d.method];
				return delay ? new Promise(function(done) { window.setTimeout(function() { done(ret); }, delay); }) :
					Promise.resolve(ret);
			};
		},
		getStatusText: function(code) {
			return [ 'Command OK', 'Invalid command', 'Invalid argument', 'Method not found', 'Resource not found',
				'No data received', 'Permission denied', 'Request timeout', 'Not supported', 'Unspecified error',
				'Connection lost' ][code] || 'Unknown error code';
		}
	},
	poll: {
		add: function(fn, interval) {
			window.POLLS.push(fn);
			// LuCI's poll loop starts with the function's first run, inside add(); a rejection is unhandled.
			Promise.resolve(fn());
		}
	},
	ui: {
		createHandlerFn: function(ctx, fn) {
			var args = Array.prototype.slice.call(arguments, 2);
			if (typeof fn === 'string')
				fn = ctx[fn];
			return function(ev) {
				var t = ev.currentTarget;
				t.classList.add('spinning');
				t.disabled = true;
				return Promise.resolve(fn.apply(ctx, args.concat([ ev ]))).finally(function() {
					t.classList.remove('spinning');
					t.disabled = false;
				});
			};
		},
		addNotification: function(title, children, cls) {
			document.getElementById('notifications').appendChild(E('div', { 'class': 'alert-message ' + (cls || '') }, [
				title ? E('h4', {}, title) : '',
				E('div', {}, children)
			]));
		},
		/** ui.js showModal: one dialog at a time, its title as text. */
		showModal: function(title, children) {
			var old = document.getElementById('modal');
			if (old)
				old.remove();
			document.body.appendChild(E('div', { 'id': 'modal', 'class': 'modal' }, [
				title ? E('h4', {}, [ title ]) : '', E('div', {}, children)
			]));
		},
		hideModal: function() {
			var m = document.getElementById('modal');
			if (m)
				m.remove();
		},
		/** ui.changes.apply(checked): LuCI applies what the session staged, with rollback when checked
		 *  (rpcd's uci apply {rollback: true, timeout: L.env.apply_rollback}, then confirm). */
		changes: {
			apply: function(checked) {
				window.APPLIED.push({ checked: checked, staged: window.UCI_STAGED.slice() });
				return Promise.resolve();
			}
		}
	},
	/** uci.js over window.UCI_PACKAGES ({config: [{'.name', '.type', '.anonymous', option: value}]}):
	 *  sections() merges what was added and set; set() on a section neither loaded nor added is ignored,
	 *  as uci.js ignores it; save() stages the changes (window.UCI_STAGED), as rpcd's uci set/add do. */
	uci: (function() {
		var loaded = {}, pending = [];
		function find(conf, sid) {
			return (loaded[conf] || []).filter(function(s) { return s['.name'] === sid; })[0];
		}
		return {
			load: function(confs) {
				[].concat(confs).forEach(function(c) {
					if (!loaded[c])
						loaded[c] = JSON.parse(JSON.stringify(((window.UCI_PACKAGES || {})[c]) || []));
				});
				return Promise.resolve();
			},
			unload: function(confs) {
				[].concat(confs).forEach(function(c) { delete loaded[c]; });
				pending = [];
			},
			sections: function(conf, type) {
				return (loaded[conf] || []).filter(function(s) { return type == null || s['.type'] === type; });
			},
			add: function(conf, type, name) {
				if (!loaded[conf])
					return null;
				loaded[conf].push({ '.name': name, '.type': type, '.anonymous': !name });
				pending.push([ 'add', conf, type, name ]);
				return name;
			},
			set: function(conf, sid, opt, val) {
				var s = find(conf, sid);
				if (!s)
					return;
				s[opt] = Array.isArray(val) ? val.slice() : String(val);
				pending.push([ 'set', conf, sid, opt, s[opt] ]);
			},
			get: function(conf, sid, opt) {
				var s = find(conf, sid);
				return s ? s[opt] : null;
			},
			save: function() {
				window.UCI_STAGED = window.UCI_STAGED.concat(pending);
				pending = [];
				return Promise.resolve();
			}
		};
	})(),
	form: (function() {
		function Option(section, type, name, title, description) {
			this.section = section; this.map = section.map;
			this.type = type; this.option = name; this.title = title; this.description = description;
			this.choices = []; this.widgets = {};
			this.rmempty = true; this.optional = false;
			this.default = type === 'Flag' ? '0' : null;
		}
		Option.prototype.value = function(k, label) { this.choices.push([ k, label || k ]); };
		Option.prototype.cfgvalue = function(sid) { return ((window.UCI || {})[sid] || {})[this.option]; };
		Option.prototype.formvalue = function(sid) {
			var el = this.widgets[sid];
			if (!el)
				return null;
			return this.type === 'Flag' ? (el.checked ? '1' : '0') : el.value;
		};
		Option.prototype.getUIElement = function(sid) {
			var el = this.widgets[sid];
			return { setValue: function(v) { el.value = v; }, getValue: function() { return el.value; } };
		};
		/** validation.js, for the datatypes the views use: an empty value passes (rmempty decides). */
		var datatypes = {
			'macaddr': [ /^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/i, 'valid MAC address' ],
			'ip4addr("nomask")': [ /^((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])$/,
				'valid IPv4 address' ],
			'port': [ /^([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$/, 'valid port value' ]
		};
		function datatypeCheck(datatype, value) {
			var d = datatypes[datatype];
			if (!datatype || value == null || value === '')
				return true;
			if (!d)
				throw new Error('the harness does not know the datatype ' + datatype);
			return d[0].test(value) ? true : 'Expecting: ' + d[1];
		}
		/** Validates the current form value; marks the widget; true or the message. */
		Option.prototype.check = function(sid) {
			var el = this.widgets[sid];
			if (!el || this.type === 'Button')
				return true;
			var check = datatypeCheck(this.datatype, this.formvalue(sid));
			if (check === true && this.validate)
				check = this.validate(sid, this.formvalue(sid));
			el.classList.toggle('cbi-input-invalid', check !== true);
			if (check !== true)
				el.setAttribute('data-error', check);
			else
				el.removeAttribute('data-error');
			var msg = el.parentNode.querySelector('.cbi-value-error');
			msg.textContent = check !== true ? check : '';
			return check;
		};
		/** A cell of a GridSection: the value as text, or its widget where the option is editable. */
		Option.prototype.cell = function(section) {
			if (this.editable)
				return this.widget(section, true);
			var v = this.cfgvalue(section['.name']);
			return E('div', {}, [ v != null ? String(v) : '-' ]);
		};
		Option.prototype.widget = function(section, compact) {
			var sid = section['.name'], value = this.cfgvalue(sid) != null ? this.cfgvalue(sid) : (this.default || '');
			var ro = (this.readonly != null) ? this.readonly : this.map.readonly;
			var el;
			if (this.type === 'Flag')
				el = E('input', { 'type': 'checkbox' }), el.checked = value === '1';
			else if (this.type === 'ListValue') {
				el = E('select', {}, this.choices.map(function(c) { return E('option', { 'value': c[0] }, [ c[1] ]); }));
				el.value = value;
			} else if (this.type === 'Button') {
				var self = this;
				el = E('button', { 'class': 'cbi-button', 'click': function(ev) { return self.onclick(ev, sid); } },
					[ this.inputtitle || this.title ]);
			} else {
				el = E('input', { 'type': this.password ? 'password' : 'text', 'placeholder': this.placeholder || '' });
				el.value = value;
				if (this.choices.length) el.setAttribute('list', 'choices-' + this.option);
			}
			el.disabled = !!ro;
			el.setAttribute('data-option', this.option);
			this.widgets[sid] = el;
			var field = E('div', { 'class': 'cbi-value-field' }, [ el, E('div', { 'class': 'cbi-value-error' }, []),
				this.description && !compact ? E('div', { 'class': 'cbi-value-description' }, [ this.description ]) : '' ]);
			if (this.choices.length && el.tagName === 'INPUT')
				field.appendChild(E('datalist', { 'id': 'choices-' + this.option }, this.choices.map(function(c) {
					return E('option', { 'value': c[0] }, [ c[1] ]);
				})));
			if (compact)
				return field;
			return E('div', { 'class': 'cbi-value', 'data-name': this.option }, [
				E('label', { 'class': 'cbi-value-title' }, [ this.title ]), field
			]);
		};
		/** form.js AbstractValue.parse (Flag: FlagValue.parse), then uci.js and libuci. */
		Option.prototype.parse = function(sid, staged) {
			// Not rendered (a GridSection's column that is not editable): not the form's to change.
			if (this.type === 'Button' || !this.widgets[sid])
				return;
			var check = this.check(sid), title = this.title || this.option;
			if (check !== true)
				throw new TypeError('Option "%s" contains an invalid input value.'.format(title) + ' ' + check);
			var fval = this.formvalue(sid), cval = this.cfgvalue(sid), self = this;
			var remove = function() {
				if (Object.prototype.hasOwnProperty.call(window.UCI[sid] || {}, self.option))
					staged.push([ 'delete', sid, self.option ]);
			};
			var write = function(v) {
				if (cval !== v)
					staged.push([ 'set', sid, self.option, v ]);
			};
			if (this.type === 'Flag')
				return (fval == this.default && (this.optional || this.rmempty)) ? remove() : write(fval);
			if (fval == null || fval === '') {
				if (this.rmempty || this.optional)
					return remove();
				throw new TypeError('Option "%s" must not be empty.'.format(title));
			}
			if (fval != cval)
				write(fval);
		};
		function Section(map, kind, args) {
			this.map = map; this.kind = kind; this.options = [];
			if (kind === 'NamedSection') { this.name = args[0]; this.stype = args[1]; this.title = args[2]; }
			else { this.stype = args[0]; this.title = args[1]; this.description = args[2]; }
		}
		Section.prototype.option = function(cls, name, title, description) {
			var o = new Option(this, cls.kind, name, title, description);
			this.options.push(o);
			return o;
		};
		Section.prototype.formvalue = function(sid, name) {
			var o = this.options.filter(function(o) { return o.option === name; })[0];
			return o ? o.formvalue(sid) : null;
		};
		Section.prototype.sections = function() {
			var uci = window.UCI || {}, self = this;
			return Object.keys(uci).map(function(k) { return uci[k]; }).filter(function(s) {
				return self.kind === 'NamedSection' ? s['.name'] === self.name : s['.type'] === self.stype;
			});
		};
		/** form.js GridSection.handleAdd: the new section exists in the form only, in a dialog. */
		var added = 0;
		Section.prototype.handleAdd = function() {
			var self = this, sid = 'new' + (++added);
			window.UCI[sid] = { '.name': sid, '.type': this.stype, '.anonymous': true, '.new': true };
			var dismiss = function() {
				delete window.UCI[sid];
				self.options.forEach(function(o) { delete o.widgets[sid]; });
				stubs.ui.hideModal();
			};
			stubs.ui.showModal(this.title, [
				E('div', { 'class': 'cbi-section-node', 'data-sid': sid },
					this.options.map(function(o) { return o.widget(window.UCI[sid]); })),
				E('div', { 'class': 'right' }, [
					E('button', { 'class': 'cbi-button', 'id': 'modal-dismiss', 'click': dismiss }, [ 'Dismiss' ]), ' ',
					E('button', { 'class': 'cbi-button cbi-button-positive important', 'id': 'modal-save', 'click': function() {
						return self.map.save().then(function() {
							delete window.UCI[sid]['.new'];
							stubs.ui.hideModal();
							return self.map.rerender();
						}, function(e) {
							document.getElementById('modal').appendChild(
								E('p', { 'class': 'alert-message warning', 'id': 'modal-error' }, [ e.message ]));
						});
					} }, [ 'Save' ])
				])
			]);
		};
		/** GridSection.handleRemove: the section goes, and the form is saved. */
		Section.prototype.handleRemove = function(sid) {
			delete window.UCI[sid];
			window.UCI_CHANGES.push([ 'remove', sid ]);
			return this.map.rerender();
		};
		Section.prototype.renderGrid = function() {
			var self = this, ro = this.map.readonly;
			var cols = this.options.filter(function(o) { return !o.modalonly; });
			var table = E('table', { 'class': 'table cbi-section-table' }, [
				E('tr', { 'class': 'tr cbi-section-table-titles' }, cols.map(function(o) {
					return E('th', { 'class': 'th cbi-section-table-cell' }, [ o.title ]);
				}).concat(this.addremove ? [ E('th', { 'class': 'th cbi-section-table-cell cbi-section-actions' }, []) ] : []))
			]);
			this.sections().forEach(function(s, i) {
				var tr = E('tr', { 'class': 'tr cbi-section-table-row cbi-rowstyle-' + (i % 2 ? 2 : 1), 'data-sid': s['.name'] },
					cols.map(function(o) { return E('td', { 'class': 'td cbi-value-field', 'data-title': o.title }, [ o.cell(s) ]); }));
				if (self.addremove)
					tr.appendChild(E('td', { 'class': 'td cbi-section-table-cell nowrap cbi-section-actions' }, [
						E('button', { 'class': 'cbi-button cbi-button-remove', 'disabled': ro ? '' : null,
							'click': function() { return self.handleRemove(s['.name']); } }, [ 'Delete' ])
					]));
				table.appendChild(tr);
			});
			if (!this.sections().length)
				table.appendChild(E('tr', { 'class': 'tr placeholder' }, [
					E('td', { 'class': 'td' }, [ E('em', {}, [ 'This section contains no values yet' ]) ])
				]));
			return E('div', { 'class': 'cbi-section cbi-tblsection', 'data-section': this.stype }, [
				E('h3', {}, [ this.title ]),
				this.description ? E('div', { 'class': 'cbi-section-descr' }, [ this.description ]) : '',
				table,
				this.addremove ? E('div', { 'class': 'cbi-section-create' }, [
					E('button', { 'class': 'cbi-button cbi-button-add', 'disabled': ro ? '' : null,
						'click': function() { return self.handleAdd(); } }, [ 'Add' ])
				]) : ''
			]);
		};
		Section.prototype.render = function() {
			if (this.kind === 'GridSection')
				return this.renderGrid();
			var self = this, sections = this.sections();
			// form.js NamedSection: a missing section is not shown; with addremove, a button creates it.
			var create = (self.kind === 'NamedSection' && !sections.length && self.addremove) ?
				E('div', { 'class': 'cbi-section-create' }, [
					E('button', { 'class': 'cbi-button cbi-button-add', 'data-create': self.name,
						'disabled': this.map.readonly ? '' : null, 'click': function() {
							window.UCI[self.name] = { '.name': self.name, '.type': self.stype, '.new': true };
							return self.map.rerender();
						} }, [ 'Add' ])
				]) : '';
			return E('fieldset', { 'class': 'cbi-section', 'data-section': self.stype }, [
				E('h3', {}, [ self.title ]),
				self.description ? E('div', { 'class': 'cbi-section-descr' }, [ self.description ]) : '',
				create,
				E('div', {}, sections.map(function(s) {
					return E('div', { 'class': 'cbi-section-node', 'data-sid': s['.name'] },
						self.options.map(function(o) { return o.widget(s); }));
				}))
			]);
		};
		function Map(config, title, description) {
			this.config = config; this.title = title; this.description = description; this.sections = [];
			window.MAP = this;
		}
		Map.prototype.section = function(cls) {
			var s = new Section(this, cls.kind, Array.prototype.slice.call(arguments, 1));
			this.sections.push(s);
			return s;
		};
		Map.prototype.lookupOption = function(name, sid) {
			for (var i = 0; i < this.sections.length; i++)
				for (var j = 0; j < this.sections[i].options.length; j++)
					if (this.sections[i].options[j].option === name)
						return [ this.sections[i].options[j], sid ];
			return null;
		};
		Map.prototype.each = function(fn) {
			this.sections.forEach(function(s) {
				s.sections().forEach(function(u) { s.options.forEach(function(o) { fn(o, u['.name']); }); });
			});
		};
		/** load (the session's uci write access decides read-only), render, then validate every field. */
		Map.prototype.render = function() {
			this.readonly = !!window.READONLY;
			var node = E('div', { 'class': 'cbi-map' }, [
				E('h2', {}, [ this.title ]), E('div', { 'class': 'cbi-map-descr' }, [ this.description ]),
				E('div', {}, this.sections.map(function(s) { return s.render(); }))
			]);
			this.each(function(o, sid) { o.check(sid); });
			this.node = node;
			return Promise.resolve(node);
		};
		Map.prototype.rerender = function() {
			var old = this.node;
			return this.render().then(function(node) { old.replaceWith(node); });
		};
		/** Resolves with what it staged (also in window.UCI_CHANGES); rejects as form.js does. */
		Map.prototype.save = function() {
			var staged = [];
			try {
				var adds = [];
				this.each(function(o, sid) {
					if (window.UCI[sid]['.new'] && adds.indexOf(sid) < 0)
						adds.push(sid), staged.push([ 'add', window.UCI[sid]['.type'], sid ]);
					o.parse(sid, staged);
				});
			}
			catch (e) {
				return Promise.reject(e);
			}
			window.UCI_CHANGES = window.UCI_CHANGES.concat(staged);
			return Promise.resolve(staged);
		};
		var f = { Map: Map };
		[ 'NamedSection', 'TypedSection', 'GridSection', 'Flag', 'ListValue', 'Value', 'Button' ].forEach(function(k) { f[k] = { kind: k }; });
		return f;
	})()
};

/** Loads a module as LuCI's require does: strip the 'require' lines, bind the modules, instantiate the
 *  class it returns. A module of the app comes from window.MODULE_SOURCES[name]. */
window.loadModule = function(source) {
	var names = [], re = /^\s*'require\s+([a-z.]+)';\s*$/mg, m;
	while ((m = re.exec(source)) !== null)
		names.push(m[1]);
	var factory = new Function(names.join(','), source.replace(re, ''));
	var C = factory.apply(null, names.map(function(n) {
		if (stubs[n])
			return stubs[n];
		if ((window.MODULE_SOURCES || {})[n])
			return (stubs[n] = loadModule(window.MODULE_SOURCES[n]));
		throw new Error('the harness has no stand-in for ' + n);
	}));
	return new C();
};

/** load() then render(), as LuCI's view machinery does; resolves when the page is in the document. */
window.showView = function(source) {
	var v = loadModule(source);
	window.VIEW = v;
	return Promise.resolve(v.load()).then(function(data) { return v.render(data); }).then(function(node) {
		var root = document.getElementById('view');
		root.innerHTML = '';
		root.appendChild(node);
		return true;
	});
};

/** A Status → Overview include as status/index.js shows one: its title, then what render() gives. */
window.showInclude = function(source) {
	var inc = loadModule(source);
	return Promise.resolve(inc.load()).then(function(data) {
		var root = document.getElementById('view');
		root.innerHTML = '';
		root.appendChild(E('div', { 'class': 'cbi-section' }, [ E('h3', {}, inc.title), inc.render(data) ]));
		return true;
	});
};
