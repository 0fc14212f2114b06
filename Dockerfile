# tfjs-explainer: the API (default command) and the batch-job worker (same image, another command).
# The build stage runs what CI runs (npm ci, npm run build; CI's npm test also starts the compiled
# server and checks it answers); the runtime stage holds only the compiled output, the production
# dependencies and the sample models, and runs as the unprivileged `node` user.
#
#   docker build -t tfjs-explainer .
#   docker run -p 8080:8080 -v /srv/models:/models:ro -e MODEL_DIR=/models tfjs-explainer
#   docker build --target test .        # the test suite inside the image (browser and Redis tests skip)

FROM node:20-bookworm-slim AS build
# g++, make and python3 build the fused Dense kernel (native/) during npm ci; without them the
# install still succeeds and models run on its committed WebAssembly build instead.
RUN apt-get update && apt-get install -y --no-install-recommends g++ make python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci runs the package's install script (node native/build.mjs), which needs the kernel's sources.
COPY native ./native
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM build AS test
RUN npm test

FROM build AS prune
RUN npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    DATA_DIR=/data \
    JOBS_DIR=/data/jobs
WORKDIR /app
COPY --from=prune --chown=node:node /app/package.json ./package.json
COPY --from=prune --chown=node:node /app/node_modules ./node_modules
COPY --from=prune --chown=node:node /app/dist ./dist
COPY --from=prune --chown=node:node /app/native/fused_mlp.wasm ./native/fused_mlp.wasm
COPY --from=prune --chown=node:node /app/native/build/Release ./native/build/Release
COPY --from=prune --chown=node:node /app/samples/models ./samples/models
RUN mkdir -p /data /models && chown node:node /data /models
USER node
EXPOSE 8080
VOLUME ["/data"]
# Liveness; readiness (/readyz) is for the orchestrator. Node 20 has fetch, so no curl in the image.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "--enable-source-maps", "dist/server/main.js"]
