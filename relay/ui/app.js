// BlameTrail webhooks admin UI. Plain JavaScript, no build step, no dependencies.
//
// Rules this file keeps:
//   - Every piece of API data reaches the page through textContent or setAttribute (see el)
//     and is never parsed as HTML, so names, URLs and error strings cannot inject markup.
//   - It talks only to the admin API of the relay that served it, with the token the user
//     typed, kept in sessionStorage (this tab only). Any 401 sends the user back to sign-in.
//   - Controls are real <button>, <a> and <input> elements with labels, so keyboards and
//     screen readers work without extra code.
'use strict';

(() => {
  const TOKEN_KEY = 'blametrail.apiToken';
  const EP = '/api/webhooks/endpoints';
  const REFRESH_MS = 2000;
  const PAGE = 25;
  const MAX_PAGE = 250;
  const EVENT_LABELS = {
    'incident.opened': 'An incident is opened',
    'incident.acknowledged': 'An incident is acknowledged',
    'incident.resolved': 'An incident is resolved',
    'deploy.ingested': 'A deploy is recorded',
  };
  const FIELD_INPUTS = {
    url: 'ep-url',
    name: 'ep-name',
    description: 'ep-description',
    event_types: 'ep-types',
  };

  const $ = (id) => document.getElementById(id);

  const state = {
    seq: 0, // bumped on every navigation; async work of an older view is dropped
    load: 0, // bumped on every load; only the newest load of a view may render
    loadFailed: false, // the alert shows a failed load
    timer: null,
    eventTypes: null,
    detailLimit: PAGE,
    deleting: null, // {id, name, after} while the delete dialog is open
    created: null, // the endpoint whose secret the add dialog shows
    rotating: null, // the endpoint whose secret the rotate dialog rotates
    carryNotice: false, // keep the notice over the next navigation (e.g. "Deleted X.")
  };

  // ---------------------------------------------------------------- DOM helpers

  // el builds an element. Children that are strings become text nodes; props become
  // properties (className, textContent, on*) or attributes. Nothing is parsed as HTML.
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'className') e.className = v;
      else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
      else if (k === 'checked' || k === 'disabled') e[k] = Boolean(v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  const hiddenText = (s) => el('span', { className: 'visually-hidden' }, s);

  function show(id, visible) {
    $(id).hidden = !visible;
  }

  // notify shows a status message. It goes at the next navigation unless carry is set.
  function notify(message, carry = false) {
    state.carryNotice = carry;
    const n = $('notice');
    n.textContent = message;
    n.hidden = !message;
    if (message) clearAlert();
  }

  function alertError(message) {
    const a = $('alert');
    a.textContent = message;
    a.hidden = !message;
  }

  function clearAlert() {
    alertError('');
  }

  // Moves focus without scrolling surprises, keeping the focused control across re-renders.
  function keepFocus(render) {
    const active = document.activeElement;
    const id = active && active !== document.body ? active.id : '';
    render();
    if (id && document.activeElement !== active) {
      const again = $(id);
      if (again) again.focus({ preventScroll: true });
    }
  }

  // ---------------------------------------------------------------- time and text

  // fmtTime formats a timestamp in the user's locale; compact leaves out today's date.
  function fmtTime(iso, compact = false) {
    if (!iso) return '';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    const clock = { hour: '2-digit', minute: '2-digit', second: '2-digit' };
    if (compact && d.toDateString() === new Date().toDateString()) return d.toLocaleTimeString(undefined, clock);
    return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', ...clock });
  }

  function relTime(iso) {
    const t = new Date(iso).getTime();
    if (Number.isNaN(t)) return '';
    const s = Math.round((t - Date.now()) / 1000);
    const a = Math.abs(s);
    let n;
    let unit;
    if (a < 60) { n = a; unit = 's'; } else if (a < 3600) { n = Math.round(a / 60); unit = 'min'; } else if (a < 86400) { n = Math.round(a / 3600); unit = 'h'; } else { n = Math.round(a / 86400); unit = 'd'; }
    if (a < 2) return 'now';
    return s < 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`;
  }

  function timeEl(iso, compact = false) {
    return el('time', { datetime: iso, title: fmtTime(iso) }, fmtTime(iso, compact));
  }

  function statusOf(ep) {
    if (ep.active) return { text: 'Active', kind: 'ok' };
    switch (ep.disabled_reason) {
      case 'consecutive_failures': {
        const n = ep.consecutive_failures > 0 ? ep.consecutive_failures : 'too many';
        return { text: `Auto-disabled: ${n} consecutive failures`, kind: 'bad' };
      }
      case 'gone':
        return { text: 'Auto-disabled: endpoint returned 410 Gone', kind: 'bad' };
      case 'manual':
      case null:
      case undefined:
        return { text: 'Disabled', kind: 'off' };
      default:
        return { text: `Disabled: ${ep.disabled_reason}`, kind: 'off' };
    }
  }

  const DELIVERY_STATUS = {
    pending: { text: 'Pending', kind: 'wait' },
    held: { text: 'Held', kind: 'off' },
    succeeded: { text: 'Succeeded', kind: 'ok' },
    failed: { text: 'Failed', kind: 'bad' },
  };

  function badge(s) {
    return el('span', { className: `badge badge-${s.kind}` }, s.text);
  }

  function deliveryBadge(status) {
    return badge(DELIVERY_STATUS[status] || { text: String(status), kind: 'off' });
  }

  function attemptResult(a) {
    if (a.status_code !== null && a.status_code !== undefined) {
      const good = a.status_code >= 200 && a.status_code < 300;
      return el('span', { className: good ? 'good' : 'bad-text' }, `HTTP ${a.status_code}`);
    }
    return el('span', { className: 'bad-text' }, a.error || 'error');
  }

  // ---------------------------------------------------------------- API

  class APIError extends Error {
    constructor(status, body) {
      const detail = (body && body.error) || {};
      super(detail.message || `The relay answered HTTP ${status}.`);
      this.status = status;
      this.code = detail.code || '';
      this.field = detail.field || '';
    }
  }

  // Unauthorized is thrown after a 401 has already sent the user to sign-in; callers only
  // need to stop.
  class Unauthorized extends Error {}

  async function api(method, path, body) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) {
      signOut('Sign in with the relay\'s API token.');
      throw new Unauthorized('no token');
    }
    const init = {
      method,
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
    };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (err) {
      throw new APIError(0, { error: { message: `The relay did not answer (${err.message}). Is it running?` } });
    }
    if (resp.status === 401) {
      signOut('The relay no longer accepts your API token. Sign in again.');
      throw new Unauthorized('401');
    }
    const text = resp.status === 204 ? '' : await resp.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
    if (!resp.ok) throw new APIError(resp.status, data);
    return data;
  }

  const epPath = (id) => `${EP}/${encodeURIComponent(id)}`;

  async function allEndpoints() {
    const out = [];
    let cursor = '';
    for (let page = 0; page < 40; page++) {
      const q = `?limit=${MAX_PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const res = await api('GET', EP + q);
      out.push(...(res.data || []));
      if (!res.next_cursor) break;
      cursor = res.next_cursor;
    }
    return out;
  }

  // mapLimit runs fn over items with at most n calls in flight.
  async function mapLimit(items, n, fn) {
    const out = new Array(items.length);
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
    return out;
  }

  async function eventTypes() {
    if (!state.eventTypes) {
      const res = await api('GET', '/api/event-types');
      state.eventTypes = res.data || [];
    }
    return state.eventTypes.filter((t) => t !== 'test.ping');
  }

  // ---------------------------------------------------------------- routing

  function stopTimer() {
    if (state.timer) clearTimeout(state.timer);
    state.timer = null;
  }

  function later(seq, fn) {
    stopTimer();
    state.timer = setTimeout(() => {
      state.timer = null;
      if (seq === state.seq) fn();
    }, REFRESH_MS);
  }

  function showView(name) {
    for (const v of ['signin', 'list', 'detail']) show(`view-${v}`, v === name);
    show('sign-out', name !== 'signin');
  }

  function setBreadcrumb(endpointName) {
    const ol = $('breadcrumb');
    const sep = () => el('span', { className: 'sep', 'aria-hidden': 'true' }, ' › ');
    const items = [el('li', {}, 'Organization'), el('li', {}, sep(), 'Integrations')];
    if (endpointName === undefined) {
      items.push(el('li', {}, sep(), el('span', { 'aria-current': 'page' }, 'Webhooks')));
    } else {
      items.push(el('li', {}, sep(), el('a', { href: '#/' }, 'Webhooks')));
      items.push(el('li', {}, sep(), el('span', { 'aria-current': 'page' }, endpointName)));
    }
    ol.replaceChildren(...items);
  }

  function route(focusHeading) {
    state.seq++;
    stopTimer();
    closeDialogs();
    if (!sessionStorage.getItem(TOKEN_KEY)) {
      showSignIn();
      return;
    }
    const m = /^#\/endpoints\/(ep_[0-9A-Za-z]{1,64})$/.exec(location.hash);
    if (m) {
      showDetail(m[1], focusHeading);
      return;
    }
    if (location.hash && location.hash !== '#/' && location.hash !== '#') {
      history.replaceState(null, '', '#/');
    }
    showList(focusHeading);
  }

  // ---------------------------------------------------------------- sign-in

  function showSignIn() {
    showView('signin');
    setBreadcrumb();
    document.title = 'Sign in · Webhooks · BlameTrail';
    $('token').focus();
  }

  // signOut forgets the token and shows sign-in with message; invalid marks the token field
  // as the cause (a 401) rather than a plain sign-out.
  function signOut(message, invalid = true) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.seq++;
    state.eventTypes = null;
    stopTimer();
    closeDialogs();
    notify('');
    clearAlert();
    $('endpoint-rows').replaceChildren();
    $('deliveries').replaceChildren();
    setSignInError(message || '', invalid);
    showSignIn();
  }

  function setSignInError(message, invalid = true) {
    $('signin-error').textContent = message;
    if (message && invalid) $('token').setAttribute('aria-invalid', 'true');
    else $('token').removeAttribute('aria-invalid');
  }

  async function onSignIn(ev) {
    ev.preventDefault();
    const input = $('token');
    const token = input.value.trim();
    if (!token) {
      setSignInError('Enter the API token.');
      input.focus();
      return;
    }
    const button = $('signin-submit');
    button.disabled = true;
    setSignInError('');
    try {
      let resp;
      try {
        resp = await fetch('/api/event-types', {
          headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
          cache: 'no-store',
          credentials: 'omit',
        });
      } catch (err) {
        setSignInError(`The relay did not answer (${err.message}). Is it running?`);
        return;
      }
      if (resp.status === 401) {
        setSignInError('That API token was not accepted. Check it and try again.');
        input.select();
        input.focus();
        return;
      }
      if (resp.status === 403) {
        // A valid token without admin rights: the relay's ingest token (--ingest-token).
        setSignInError('That is the relay\'s ingest token, which can only post events. Sign in with the API token.');
        input.select();
        input.focus();
        return;
      }
      if (!resp.ok) {
        const body = await resp.json().catch(() => null);
        const why = (body && body.error && body.error.message) || `HTTP ${resp.status}`;
        setSignInError(`The relay could not check the token (${why}). Try again in a moment.`, false);
        return;
      }
      const body = await resp.json().catch(() => ({}));
      sessionStorage.setItem(TOKEN_KEY, token);
      state.eventTypes = Array.isArray(body.data) ? body.data : null;
      input.value = '';
      route(true);
    } finally {
      button.disabled = false;
    }
  }

  // ---------------------------------------------------------------- list view

  function showList(focusHeading) {
    showView('list');
    setBreadcrumb();
    document.title = 'Webhooks · BlameTrail';
    if (focusHeading) $('list-title').focus();
    const seq = state.seq;
    if (!$('endpoint-rows').children.length) show('list-loading', true);
    loadList(seq);
  }

  async function loadList(seq) {
    const load = ++state.load;
    const stale = () => seq !== state.seq || load !== state.load;
    let eps;
    let lasts;
    try {
      eps = await allEndpoints();
      lasts = await mapLimit(eps, 6, async (ep) => {
        try {
          const res = await api('GET', `${epPath(ep.id)}/deliveries?limit=1`);
          return (res.data && res.data[0]) || null;
        } catch (err) {
          if (err instanceof Unauthorized) throw err;
          return { unknown: true };
        }
      });
    } catch (err) {
      if (err instanceof Unauthorized || stale()) return;
      show('list-loading', false);
      alertError(`Could not load endpoints: ${err.message}`);
      state.loadFailed = true;
      later(seq, () => loadList(seq));
      return;
    }
    if (stale()) return;
    loadRecovered();
    show('list-loading', false);
    keepFocus(() => renderList(eps, lasts));
    if (lasts.some((d) => d && d.status === 'pending')) later(seq, () => loadList(seq));
  }

  function renderList(eps, lasts) {
    const rows = eps.map((ep, i) => endpointRow(ep, lasts[i]));
    $('endpoint-rows').replaceChildren(...rows);
    show('endpoints', eps.length > 0);
    show('list-empty', eps.length === 0);
  }

  function endpointRow(ep, last) {
    const st = statusOf(ep);
    return el('tr', { 'data-endpoint-id': ep.id },
      el('td', { 'data-label': 'Name', className: 'cell-name' },
        el('a', { href: `#/endpoints/${ep.id}`, id: `row-name-${ep.id}` }, ep.name)),
      el('td', { 'data-label': 'URL', className: 'cell-url' }, el('code', {}, ep.url)),
      el('td', { 'data-label': 'Status', className: 'cell-status' }, badge(st)),
      el('td', { 'data-label': 'Last delivery', className: 'cell-last' }, lastDelivery(last)),
      el('td', { 'data-label': 'Consecutive failures', className: 'num cell-failures' },
        String(ep.consecutive_failures)),
      el('td', { 'data-label': 'Actions', className: 'cell-actions' },
        endpointActions(ep, 'row')));
  }

  function lastDelivery(d) {
    if (!d) return el('span', { className: 'muted' }, 'No deliveries yet');
    if (d.unknown) return el('span', { className: 'muted' }, 'Unknown');
    const attempts = d.attempts || [];
    const a = attempts[attempts.length - 1];
    const detail = [];
    if (a) {
      detail.push(attemptResult(a), ` · ${a.duration_ms} ms · `, el('time', { datetime: a.at, title: fmtTime(a.at) }, relTime(a.at)));
    } else if (d.next_attempt_at) {
      detail.push('first attempt ', el('time', { datetime: d.next_attempt_at, title: fmtTime(d.next_attempt_at) }, relTime(d.next_attempt_at)));
    }
    return el('div', { className: 'last' },
      el('div', {}, deliveryBadge(d.status), ' ', el('code', { className: 'event-type' }, d.event_type)),
      detail.length ? el('div', { className: 'small' }, detail) : null);
  }

  // endpointActions builds Send Test, the Active switch, the deliveries link (rows only) and
  // Delete. where is "row" or "detail"; it keeps ids unique and stable across re-renders.
  function endpointActions(ep, where) {
    const id = (what) => `${where}-${what}-${ep.id}`;
    const activeId = id('active');
    const name = hiddenText(` ${ep.name}`);
    return el('div', { className: 'actions' },
      el('button', { type: 'button', id: id('test'), className: 'send-test', onclick: () => sendTest(ep) },
        'Send Test', hiddenText(` to ${ep.name}`)),
      el('span', { className: 'switch' },
        el('input', {
          type: 'checkbox', role: 'switch', id: activeId, className: 'active-toggle',
          checked: ep.active, onchange: (ev) => setActive(ep, ev.target),
        }),
        el('label', { for: activeId }, 'Active', hiddenText(`: ${ep.name}`))),
      where === 'row'
        ? el('a', { href: `#/endpoints/${ep.id}`, id: id('deliveries'), className: 'button deliveries-link' },
          'Deliveries', hiddenText(` of ${ep.name}`))
        : null,
      el('button', { type: 'button', id: id('delete'), className: 'danger-quiet delete', onclick: () => askDelete(ep) },
        'Delete', name));
  }

  async function sendTest(ep) {
    try {
      const res = await api('POST', `${epPath(ep.id)}/test`);
      notify(`Test ping queued for ${ep.name} (delivery ${res.delivery_id}).`);
    } catch (err) {
      if (err instanceof Unauthorized) return;
      alertError(`Send Test to ${ep.name} failed: ${err.message}`);
      return;
    }
    refreshView();
  }

  async function setActive(ep, box) {
    const want = box.checked;
    box.disabled = true;
    try {
      await api('PATCH', epPath(ep.id), { active: want });
      notify(`${ep.name} is now ${want ? 'active' : 'disabled'}.`);
    } catch (err) {
      if (err instanceof Unauthorized) return;
      box.checked = !want;
      alertError(`Could not ${want ? 'enable' : 'disable'} ${ep.name}: ${err.message}`);
    } finally {
      box.disabled = false;
    }
    refreshView();
  }

  // loadRecovered clears the error of a failed load once a load works again; other errors
  // (a failed Send Test, say) stay until the user moves on.
  function loadRecovered() {
    if (state.loadFailed) clearAlert();
    state.loadFailed = false;
  }

  // refreshView reloads what the current view shows, keeping focus and scroll.
  function refreshView() {
    const seq = state.seq;
    stopTimer();
    const m = /^#\/endpoints\/(ep_[0-9A-Za-z]{1,64})$/.exec(location.hash);
    if (!$('view-detail').hidden && m) loadDetail(m[1], seq);
    else if (!$('view-list').hidden) loadList(seq);
  }

  // ---------------------------------------------------------------- delete dialog

  function askDelete(ep) {
    state.deleting = { id: ep.id, name: ep.name };
    $('delete-name').textContent = ep.name;
    $('delete-url').textContent = ep.url;
    $('delete-error').textContent = '';
    $('delete-confirm').disabled = false;
    $('delete-dialog').showModal();
    $('delete-cancel').focus();
  }

  async function confirmDelete() {
    const target = state.deleting;
    if (!target) return;
    $('delete-confirm').disabled = true;
    try {
      await api('DELETE', epPath(target.id));
    } catch (err) {
      if (err instanceof Unauthorized) return;
      // Already gone is what was asked; any other 404 (a route the relay does not serve)
      // is a failure, not a deletion.
      if (err.code !== 'endpoint_not_found') {
        $('delete-error').textContent = `Could not delete: ${err.message}`;
        $('delete-confirm').disabled = false;
        return;
      }
    }
    state.deleting = null;
    $('delete-dialog').close();
    notify(`Deleted ${target.name}.`, true);
    if (location.hash === `#/endpoints/${target.id}`) {
      location.hash = '#/';
      return;
    }
    $(`list-title`).focus();
    refreshView();
  }

  // ---------------------------------------------------------------- add dialog

  function clearFieldErrors() {
    for (const [field, inputId] of Object.entries(FIELD_INPUTS)) {
      $(`${field}-error`).textContent = '';
      $(inputId).removeAttribute('aria-invalid');
    }
    $('add-error').textContent = '';
  }

  async function openAdd() {
    clearFieldErrors();
    $('add-form').reset();
    show('add-form', true);
    show('add-secret', false);
    $('add-dialog').setAttribute('aria-labelledby', 'add-title');
    $('add-save').disabled = false;
    $('ep-types-list').replaceChildren();
    $('add-dialog').showModal();
    $('ep-url').focus();
    let types;
    try {
      types = await eventTypes();
    } catch (err) {
      if (err instanceof Unauthorized) return;
      $('event_types-error').textContent = `Could not load event types: ${err.message}`;
      return;
    }
    $('ep-types-list').replaceChildren(...types.map((t) => {
      const id = `type-${t.replace(/[^A-Za-z0-9_-]/g, '-')}`;
      return el('div', { className: 'check' },
        el('input', { type: 'checkbox', id, name: 'event_types', value: t }),
        el('label', { for: id }, el('code', {}, t), EVENT_LABELS[t] ? el('span', { className: 'muted' }, ` — ${EVENT_LABELS[t]}`) : null));
    }));
  }

  async function onSave(ev) {
    ev.preventDefault();
    clearFieldErrors();
    const body = {
      url: $('ep-url').value.trim(),
      name: $('ep-name').value,
    };
    const description = $('ep-description').value;
    if (description.trim()) body.description = description;
    const types = [...document.querySelectorAll('#ep-types-list input:checked')].map((i) => i.value);
    if (types.length) body.event_types = types;
    const save = $('add-save');
    save.disabled = true;
    let ep;
    try {
      ep = await api('POST', EP, body);
    } catch (err) {
      if (err instanceof Unauthorized) return;
      save.disabled = false;
      const inputId = FIELD_INPUTS[err.field];
      if (inputId) {
        $(`${err.field}-error`).textContent = err.message;
        const input = $(inputId);
        input.setAttribute('aria-invalid', 'true');
        (input.tagName === 'FIELDSET' ? input.querySelector('input') || input : input).focus();
      } else {
        $('add-error').textContent = err.message;
      }
      return;
    }
    state.created = ep;
    $('secret-endpoint').textContent = ep.name;
    $('new-secret').value = ep.secret || '';
    $('copy-status').textContent = '';
    show('add-form', false);
    show('add-secret', true);
    $('add-dialog').setAttribute('aria-labelledby', 'secret-title');
    $('copy-secret').focus();
    notify(`Added ${ep.name}.`);
    refreshView();
  }

  // copySecret copies the secret shown in inputId and says how it went in statusId.
  async function copySecret(inputId, statusId) {
    const input = $(inputId);
    let ok = false;
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await Promise.race([
          navigator.clipboard.writeText(input.value),
          new Promise((_, reject) => { setTimeout(() => reject(new Error('timeout')), 1000); }),
        ]);
        ok = true;
      } catch (_) {
        ok = false;
      }
    }
    if (!ok) {
      input.focus();
      input.select();
      try { ok = document.execCommand('copy'); } catch (_) { ok = false; }
    }
    $(statusId).textContent = ok
      ? 'Copied to the clipboard.'
      : 'Copying is blocked here: the secret is selected, press Ctrl+C (⌘C on a Mac).';
  }

  function finishAdd() {
    $('new-secret').value = '';
    state.created = null;
    $('add-dialog').close();
  }

  function closeDialogs() {
    for (const d of document.querySelectorAll('dialog[open]')) d.close();
    $('new-secret').value = '';
    $('rotated-secret').value = '';
    state.created = null;
    state.deleting = null;
    state.rotating = null;
  }

  // ---------------------------------------------------------------- secret rotation

  function rotateButton(ep) {
    return el('button', { type: 'button', id: `detail-rotate-${ep.id}`, className: 'rotate-secret', onclick: () => askRotate(ep) },
      'Rotate secret', hiddenText(` of ${ep.name}`));
  }

  function askRotate(ep) {
    state.rotating = ep;
    $('rotate-name').textContent = ep.name;
    $('rotate-overlap').value = '24h';
    $('rotate-error').textContent = '';
    $('rotate-confirm').disabled = false;
    show('rotate-form', true);
    show('rotate-result', false);
    $('rotate-dialog').setAttribute('aria-labelledby', 'rotate-title');
    $('rotate-dialog').showModal();
    $('rotate-overlap').focus();
  }

  async function onRotate(ev) {
    ev.preventDefault();
    const ep = state.rotating;
    if (!ep) return;
    $('rotate-confirm').disabled = true;
    $('rotate-error').textContent = '';
    let res;
    try {
      res = await api('POST', `${epPath(ep.id)}/secret/rotate`, { expire_previous_in: $('rotate-overlap').value });
    } catch (err) {
      if (err instanceof Unauthorized) return;
      $('rotate-error').textContent = `Could not rotate the secret: ${err.message}`;
      $('rotate-confirm').disabled = false;
      return;
    }
    if (state.rotating !== ep) return; // closed meanwhile: never show a secret in a closed dialog
    $('rotated-name').textContent = ep.name;
    $('rotated-secret').value = res.secret || '';
    $('copy-rotated-status').textContent = '';
    const until = res.previous_secret_expires_at;
    $('rotated-overlap').replaceChildren(...(until
      ? ['The previous secret keeps signing deliveries, next to the new one, until ',
        el('time', { id: 'rotated-expires', datetime: until }, fmtTime(until)), ` (${relTime(until)}).`]
      : ['The previous secret no longer signs deliveries.']));
    show('rotate-form', false);
    show('rotate-result', true);
    $('rotate-dialog').setAttribute('aria-labelledby', 'rotated-title');
    $('copy-rotated').focus();
    notify(`Rotated the signing secret of ${ep.name}.`);
  }

  function finishRotate() {
    $('rotated-secret').value = '';
    state.rotating = null;
    $('rotate-dialog').close();
  }

  function initRotate() {
    $('rotate-form').addEventListener('submit', onRotate);
    $('rotate-cancel').addEventListener('click', () => $('rotate-dialog').close());
    $('copy-rotated').addEventListener('click', () => copySecret('rotated-secret', 'copy-rotated-status'));
    $('rotate-done').addEventListener('click', finishRotate);
    $('rotate-dialog').addEventListener('close', () => {
      if ($('rotate-dialog').open) return;
      $('rotated-secret').value = ''; // shown once: gone with the dialog
      state.rotating = null;
    });
  }

  // ---------------------------------------------------------------- detail view

  function showDetail(id, focusHeading) {
    showView('detail');
    state.detailLimit = PAGE;
    $('deliveries').replaceChildren();
    $('detail-meta').replaceChildren();
    $('detail-actions').replaceChildren();
    $('detail-title').textContent = 'Endpoint';
    setBreadcrumb(id);
    document.title = 'Endpoint · Webhooks · BlameTrail';
    show('deliveries-empty', false);
    show('refresh-note', false);
    show('load-more', false);
    if (focusHeading) $('detail-title').focus();
    loadDetail(id, state.seq);
  }

  async function loadDetail(id, seq) {
    const load = ++state.load;
    const stale = () => seq !== state.seq || load !== state.load;
    let ep;
    let list;
    try {
      ep = await api('GET', epPath(id));
      list = await api('GET', `${epPath(id)}/deliveries?limit=${state.detailLimit}`);
    } catch (err) {
      if (err instanceof Unauthorized || stale()) return;
      if (err.code === 'endpoint_not_found') {
        $('detail-title').textContent = 'Endpoint not found';
        $('detail-meta').replaceChildren(el('p', {}, 'It may have been deleted. ', el('a', { href: '#/' }, 'Back to Webhooks')));
        show('deliveries-empty', false);
        return;
      }
      alertError(`Could not load the endpoint: ${err.message}`);
      state.loadFailed = true;
      later(seq, () => loadDetail(id, seq));
      return;
    }
    if (stale()) return;
    loadRecovered();
    keepFocus(() => renderDetail(ep, list));
    const busy = (list.data || []).some((d) => d.status === 'pending' || d.status === 'held');
    show('refresh-note', busy);
    if (busy) later(seq, () => loadDetail(id, seq));
  }

  function renderDetail(ep, list) {
    document.title = `${ep.name} · Webhooks · BlameTrail`;
    setBreadcrumb(ep.name);
    $('detail-title').textContent = ep.name;
    $('detail-actions').replaceChildren(endpointActions(ep, 'detail'), rotateButton(ep), resend.recoverButton(ep));
    const types = ep.event_types && ep.event_types.length ? ep.event_types.join(', ') : 'All event types';
    const meta = [
      ['url', 'URL', el('code', {}, ep.url)],
      ['status', 'Status', badge(statusOf(ep))],
      ['event_types', 'Event types', types],
      ['consecutive_failures', 'Consecutive failures', String(ep.consecutive_failures)],
      ['id', 'Endpoint ID', el('code', {}, ep.id)],
      ['created_at', 'Created', timeEl(ep.created_at)],
    ];
    if (ep.description) meta.splice(1, 0, ['description', 'Description', ep.description]);
    $('detail-meta').replaceChildren(...meta.map(([field, label, value]) => el('div', { 'data-field': field },
      el('dt', {}, label), el('dd', {}, value))));
    const data = list.data || [];
    $('deliveries').replaceChildren(...data.map((d) => deliveryItem(ep, d)));
    show('deliveries-empty', data.length === 0);
    show('load-more', Boolean(list.next_cursor) && state.detailLimit < MAX_PAGE);
  }

  function deliveryItem(ep, d) {
    const attempts = d.attempts || [];
    const head = el('div', { className: 'delivery-head' },
      deliveryBadge(d.status),
      el('code', { className: 'event-type' }, d.event_type),
      el('span', { className: 'muted small mono' }, d.id),
      resend.resendButton(ep, d));
    let next = null;
    if (d.next_attempt_at) {
      const due = new Date(d.next_attempt_at).getTime() <= Date.now();
      next = el('p', { className: 'next small' }, 'Next attempt: ', timeEl(d.next_attempt_at, true),
        due ? ' (due now)' : ` (${relTime(d.next_attempt_at)})`);
    }
    let body;
    if (attempts.length === 0) {
      body = el('p', { className: 'muted small' }, d.status === 'held'
        ? 'Held while the endpoint is disabled; enabling it resumes delivery.'
        : 'No finished attempts yet.');
    } else {
      body = el('table', { className: 'attempts' },
        el('caption', { className: 'visually-hidden' }, `Attempts of delivery ${d.id}`),
        el('thead', {}, el('tr', {},
          el('th', { scope: 'col', className: 'num col-n' }, '#'),
          el('th', { scope: 'col', className: 'col-time' }, 'Time'),
          el('th', { scope: 'col' }, 'Result'),
          el('th', { scope: 'col', className: 'num col-duration' }, 'Duration'))),
        el('tbody', {}, attempts.map((a) => el('tr', { className: 'attempt' },
          el('td', { className: 'num' }, String(a.n)),
          el('td', { className: 'when' }, timeEl(a.at, true)),
          el('td', { className: 'result' }, attemptResult(a)),
          el('td', { className: 'num' }, `${a.duration_ms} ms`)))));
    }
    // The id and tabindex let focus rest on the delivery when its Resend button goes away.
    return el('li', {
      id: `delivery-${d.id}`, tabindex: '-1',
      className: 'delivery', 'data-delivery-id': d.id, 'data-status': d.status, 'data-event-type': d.event_type,
    }, head, next, body);
  }

  // ---------------------------------------------------------------- wiring

  // Resend and recover live in resend.js, which index.html loads first; it gets the helpers
  // it shares with this file.
  const resend = window.BlameTrailResend({
    $, el, hiddenText, api, epPath, Unauthorized, notify, alertError, refreshView, fmtTime, view: () => state.seq,
  });

  function init() {
    $('signin-form').addEventListener('submit', onSignIn);
    $('sign-out').addEventListener('click', () => signOut('You are signed out.', false));
    $('add-endpoint').addEventListener('click', openAdd);
    $('add-form').addEventListener('submit', onSave);
    $('add-cancel').addEventListener('click', () => $('add-dialog').close());
    $('copy-secret').addEventListener('click', () => copySecret('new-secret', 'copy-status'));
    initRotate();
    $('secret-done').addEventListener('click', finishAdd);
    // A dialog's close event is queued, and input can run first: a dialog opened again in
    // between must keep its state.
    $('add-dialog').addEventListener('close', () => {
      if (!$('add-dialog').open) $('new-secret').value = '';
    });
    $('delete-cancel').addEventListener('click', () => $('delete-dialog').close());
    $('delete-confirm').addEventListener('click', confirmDelete);
    $('delete-dialog').addEventListener('close', () => {
      if (!$('delete-dialog').open) state.deleting = null;
    });
    $('refresh-deliveries').addEventListener('click', refreshView);
    $('load-more').addEventListener('click', () => {
      state.detailLimit = Math.min(MAX_PAGE, state.detailLimit + PAGE);
      refreshView();
    });
    window.addEventListener('hashchange', () => {
      if (!state.carryNotice) {
        notify('');
        clearAlert();
      }
      state.carryNotice = false;
      route(true);
    });
    route(false);
  }

  init();
})();
