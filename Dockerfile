# syntax=docker/dockerfile:1
#
# Context Memory Gateway — production image.
#
#   docker build -t context-memory-gateway .
#   docker run -p 8080:8080 -e ADMIN_TOKEN=... -e OPENROUTER_API_KEY=... context-memory-gateway
#
# The image runs the compiled gateway (dist/, built by `npm run build` in the build stage) with plain
# node: no TypeScript loader in production. SQL migrations (drizzle/) are applied at start.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- deps: the full dependency tree (dev tools included), for build/CI targets ----------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --no-audit --no-fund

# ---- build: src/ transpiled to dist/ by esbuild (dashboard assets copied alongside; CI type-checks) 
FROM deps AS build
COPY tsconfig.json tsconfig.build.json drizzle.config.ts ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

# ---- prod-deps: runtime dependencies only ------------------------------------------------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --no-audit --no-fund

# ---- runtime -----------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app

ENV NODE_ENV=production \
    PORT=8080 \
    HOST=0.0.0.0 \
    DATA_DIR=/data

# Files stay owned by root (the app never writes to /app); only DATA_DIR is writable by `node`.
# DATA_DIR holds the embedded PGlite database when DATABASE_URL is unset, and the local spill files
# that keep usage records through a Postgres outage: mount a volume there to keep them.
RUN mkdir -p /data && chown node:node /data

COPY --from=prod-deps /app/node_modules ./node_modules
COPY package.json ./
COPY drizzle ./drizzle
COPY --from=build /app/dist ./dist

USER node

EXPOSE 8080

# The slim image has no curl/wget: probe with node's own fetch.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"]

# node is PID 1 (not npm, not a shell), so SIGTERM reaches the gateway's graceful shutdown:
# stop accepting, finish open streams within SHUTDOWN_GRACE_MS, flush usage, exit 0.
STOPSIGNAL SIGTERM
# The V8 flags are those of `npm start` (package.json; a test keeps the two the same). A young
# generation of a fixed 8 MB (V8 otherwise starts it small and grows it only as objects survive,
# collecting twice as often at 500 req/s) and an old-space limit keep the resident set well under
# 150 MB under load; one GC thread suits a replica limited to about one CPU; --liftoff-only skips
# the optimizing recompile of WebAssembly (undici's HTTP parser, PGlite) that briefly took 20+ MB.
# --max-old-space-size is the heap limit: raise it for many concurrent bodies near MAX_BODY_BYTES.
CMD ["node", "--min-semi-space-size=8", "--max-semi-space-size=8", "--max-old-space-size=384", "--single-threaded-gc", "--liftoff-only", "dist/main.js"]
