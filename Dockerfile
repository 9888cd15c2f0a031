# syntax=docker/dockerfile:1
# ov-diffusion server image. Multi-stage: the build stage installs the OpenVINO runtime from the pinned PyPI wheels
# with our own install script (npm ci -> scripts/install.js -> pip --target runtime/), checks that the committed
# prebuilt addon loads, compiles the TypeScript and drops the dev dependencies; the final stage is node slim with
# no compiler, no pip and no npm cache, running as a numeric non-root user and happy on a read-only root filesystem
# (it writes only /tmp, and --cache_dir when given). docs/deploy.md has the build and run commands.
#
# Build args:
#   NODE_VERSION   Node.js major of both stages (the addon is N-API 8: any Node >= 20)
#   VERSION        the image's version label (defaults to package.json's version; informative)
#   MODEL_SOURCE   optional Hugging Face repository in OpenVINO format to bake into /models at build time, e.g.
#                  OpenVINO/stable-diffusion-v1-5-int8-ov; serve it with --source_model <same> (no download then)
ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm AS build
# pip for scripts/install.js (it installs openvino and openvino-tokenizers at the versions package.json pins).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-pip=23.0.1+dfsg-1 \
 && rm -rf /var/lib/apt/lists/*
# Debian's python refuses pip installs into itself (PEP 668); ours go to runtime/site-packages with --target.
ENV PIP_BREAK_SYSTEM_PACKAGES=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY package.json package-lock.json tsconfig.json CMakeLists.txt binding.gyp ./
COPY scripts/install.js scripts/runtime.js scripts/source-hash.js scripts/cmake-js-as-node-gyp.js scripts/build.js scripts/
COPY native/ native/
COPY prebuilds/ prebuilds/
COPY lib/ lib/
# npm ci runs the install hook (OpenVINO runtime from the pinned wheels; fails if the prebuilt addon cannot load)
# and prepare (tsc -> dist/); then the dev dependencies go.
RUN npm ci --no-audit --no-fund \
 && node -e "console.log('openvino', require('./').openvinoVersion())" \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force
COPY bin/ bin/
COPY models/demo/ models/demo/
COPY models/demo-inpaint/ models/demo-inpaint/
COPY models/loras/ models/loras/
# Readable by the server's user (10001) whatever modes the checkout has: git keeps no read bits, so a file written
# with mode 0600 (a model or LoRA saved by a tool with a private umask) would otherwise fail to load in the image.
RUN chmod -R a+rX bin prebuilds models

FROM build AS model
ARG MODEL_SOURCE=""
ENV HF_HUB_DISABLE_TELEMETRY=1
RUN mkdir -p /models \
 && if [ -n "$MODEL_SOURCE" ]; then \
      node bin/ov-diffusion.js --source_model "$MODEL_SOURCE" --model_repository_path /models --pull; \
    fi

FROM node:${NODE_VERSION}-bookworm-slim
ARG VERSION=""
LABEL org.opencontainers.image.title="ov-diffusion" \
      org.opencontainers.image.description="OpenAI-compatible image generation server on OpenVINO" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production \
    HOME=/tmp \
    OVMS_MODEL_REPOSITORY_PATH=/models
WORKDIR /app
# Root-owned and read-only for the server's user: nothing under /app is written at run time.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules/ node_modules/
COPY --from=build /app/dist/ dist/
COPY --from=build /app/bin/ bin/
COPY --from=build /app/prebuilds/ prebuilds/
COPY --from=build /app/runtime/ runtime/
COPY --from=build /app/models/ models/
COPY --from=model /models/ /models/
USER 10001:10001
EXPOSE 8000
# Ready = the model is loaded and compiled (503 before, and while draining after SIGTERM). No curl in slim: node.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8000/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/ov-diffusion.js"]
CMD ["--rest_port", "8000"]
