export * from './workspaces.js';
export * from './api-keys.js';
export * from './usage.js';
export * from './threads.js';
export * from './responses.js';
