// The console's client: one page, one view at a time, chosen by the URL's hash (#usage,
// #requests, #keys, #workspaces, #threads/{workspace}/{thread}). A reports key's page has only the
// views it may read; the APIs refuse the rest anyway.

import { $ } from './lib.js';
import * as usage from './usage.js';
import * as requests from './requests.js';

const admin = $('dashboard').dataset.role === 'admin';
const views = { usage, requests };
if (admin) {
  const [keys, workspaces, threads] = await Promise.all([import('./keys.js'), import('./workspaces.js'), import('./threads.js')]);
  Object.assign(views, { keys, workspaces, threads });
}
let shown = null;

const decode = (part) => {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
};

function route() {
  const [name, ...args] = location.hash.replace(/^#/, '').split('/').map(decode);
  const id = views[name] ? name : 'usage';
  if (shown && shown !== id) views[shown].hide?.();
  shown = id;
  for (const section of document.querySelectorAll('main > section.view')) section.hidden = section.dataset.view !== id;
  for (const link of document.querySelectorAll('nav a[data-view]')) {
    if (link.dataset.view === id) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  views[id].show(args);
}

window.addEventListener('hashchange', route);
route();
