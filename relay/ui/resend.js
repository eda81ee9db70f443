// Resend and recover: the Resend button of a finished delivery and the "Recover failed
// deliveries…" dialog of an endpoint.
//
// index.html loads this file before app.js, and app.js calls BlameTrailResend once, passing
// the helpers it shares (so there is one API client, one error area and one sign-out path),
// and puts the controls it returns into the detail view. The file keeps app.js's rules: API
// data reaches the page only as text, and every control is a real, labelled element.
'use strict';

window.BlameTrailResend = (ui) => {
  const { $, el, hiddenText, api, epPath, Unauthorized, notify, alertError, refreshView, fmtTime, view } = ui;
  const DAY_MS = 24 * 60 * 60 * 1000;
  let recovering = null; // the endpoint whose recover dialog is open

  // ---------------------------------------------------------------- time

  const pad = (n) => String(n).padStart(2, '0');

  // localInputValue is d as a datetime-local value ("2024-05-01T09:30") in the browser's time
  // zone, which is how the input shows and reads it.
  function localInputValue(d) {
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  // toRFC3339 reads a datetime-local value as the browser's local time and returns that
  // instant in UTC ("2024-05-01T07:30:00Z"), or '' when the value is not a usable time.
  // Not input.valueAsNumber: it reads the wall-clock time as if it were UTC, so every user
  // east or west of Greenwich would recover from the wrong hour.
  function toRFC3339(value) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(value);
    if (!m) return '';
    const [y, mo, d, h, mi, s = '0', frac = '0'] = m.slice(1);
    const t = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), Number(frac.padEnd(3, '0')));
    if (Number(y) < 100) t.setFullYear(Number(y)); // the constructor reads 0–99 as 1900–1999
    // Date rolls an impossible day (February 30th) over into the next month; refuse it.
    if (Number.isNaN(t.getTime()) || t.getMonth() !== Number(mo) - 1 || t.getDate() !== Number(d)) return '';
    return t.toISOString().replace(/\.000Z$/, 'Z');
  }

  // zoneText names the browser's time zone and its offset at d, so the user knows which
  // clock the input is on.
  function zoneText(d) {
    const off = -d.getTimezoneOffset();
    const sign = off < 0 ? '−' : '+';
    const a = Math.abs(off);
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';
    return `${zone} (UTC${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)})`;
  }

  // ---------------------------------------------------------------- resend one delivery

  // The relay still owns a pending or held delivery, so only a finished one gets the button.
  const finished = (d) => d.status === 'succeeded' || d.status === 'failed';

  function resendButton(ep, d) {
    if (!finished(d)) return null;
    return el('button', {
      type: 'button', id: `resend-${d.id}`, className: 'resend',
      onclick: (ev) => resend(ep, d, ev.currentTarget),
    }, 'Resend', hiddenText(` delivery ${d.id} (${d.event_type})`));
  }

  async function resend(ep, d, button) {
    const at = view();
    // Read before disabling: Chromium moves focus off a button as it is disabled.
    const hadFocus = document.activeElement === button;
    button.disabled = true;
    try {
      await api('POST', `${epPath(ep.id)}/deliveries/${encodeURIComponent(d.id)}/resend`);
    } catch (err) {
      if (err instanceof Unauthorized) return;
      button.disabled = false;
      if (at !== view()) return;
      notify(''); // an earlier "Resending …" would contradict the error
      alertError(`Could not resend delivery ${d.id}: ${err.message}`);
      if (hadFocus) button.focus();
      // It may have changed under the page (resent from elsewhere, endpoint disabled): show
      // how it is now.
      refreshView();
      return;
    }
    if (at !== view()) return;
    notify(`Resending delivery ${d.id} (${d.event_type}) to ${ep.name}.`);
    // A pending delivery has no button, so the re-render would drop keyboard focus to the
    // page; the delivery itself keeps it instead (app.js restores focus by id).
    const item = document.getElementById(`delivery-${d.id}`);
    if (hadFocus && item) item.focus();
    refreshView();
  }

  // ---------------------------------------------------------------- recover an endpoint

  function recoverButton(ep) {
    return el('button', {
      type: 'button', id: `detail-recover-${ep.id}`, className: 'recover', onclick: () => askRecover(ep),
    }, 'Recover failed deliveries…', hiddenText(` to ${ep.name}`));
  }

  function clearRecoverErrors() {
    $('since-error').textContent = '';
    $('recover-since').removeAttribute('aria-invalid');
    $('recover-error').textContent = '';
  }

  function sinceError(message) {
    $('since-error').textContent = message;
    $('recover-since').setAttribute('aria-invalid', 'true');
    $('recover-since').focus();
  }

  function askRecover(ep) {
    recovering = ep;
    const dayAgo = new Date(Date.now() - DAY_MS);
    $('recover-name').textContent = ep.name;
    $('recover-since').value = localInputValue(dayAgo);
    $('recover-zone').textContent = zoneText(dayAgo);
    clearRecoverErrors();
    $('recover-confirm').disabled = false;
    $('recover-dialog').showModal();
    $('recover-since').focus();
  }

  function recoveredText(ep, since, res) {
    const n = Number(res && res.resent) || 0;
    const m = Number(res && res.expired) || 0;
    let text = `Resent ${n} ${n === 1 ? 'delivery' : 'deliveries'} to ${ep.name}`;
    text += n === 0 && m === 0 ? `: none failed since ${fmtTime(since)}.` : '.';
    if (m > 0) text += ` ${m} could not be resent: payload no longer kept.`;
    // One call resends at most 1,000; the next one takes the rest (pending ones are skipped).
    if (res && res.more) text += ' More failed deliveries remain: recover again.';
    return text;
  }

  async function onRecover(ev) {
    ev.preventDefault();
    const ep = recovering;
    if (!ep) return;
    clearRecoverErrors();
    const since = toRFC3339($('recover-since').value);
    if (!since) {
      sinceError('Choose the date and time to recover from.');
      return;
    }
    const at = view();
    $('recover-confirm').disabled = true;
    let res;
    try {
      res = await api('POST', `${epPath(ep.id)}/recover`, { since });
    } catch (err) {
      if (err instanceof Unauthorized || recovering !== ep) return;
      $('recover-confirm').disabled = false;
      if (err.field === 'since') sinceError(err.message);
      else $('recover-error').textContent = `Could not recover failed deliveries: ${err.message}`;
      return;
    }
    // The deliveries were resent even if the dialog was closed meanwhile: say so while the
    // page still shows this endpoint.
    if (recovering === ep) $('recover-dialog').close();
    if (at !== view()) return;
    notify(recoveredText(ep, since, res));
    // Back to the button that opened the dialog, even if a refresh replaced it meanwhile.
    const button = document.getElementById(`detail-recover-${ep.id}`);
    if (button) button.focus();
    refreshView();
  }

  $('recover-form').addEventListener('submit', onRecover);
  $('recover-cancel').addEventListener('click', () => $('recover-dialog').close());
  // The close event is queued: a dialog opened again before it runs keeps its endpoint.
  $('recover-dialog').addEventListener('close', () => {
    if (!$('recover-dialog').open) recovering = null;
  });

  return { resendButton, recoverButton };
};
