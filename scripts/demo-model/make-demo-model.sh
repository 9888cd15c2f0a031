#!/usr/bin/env bash
# Trains the demo model from scratch and exports it to models/demo, its inpainting variant to
# models/demo-inpaint and its style LoRA to models/loras/outlined.safetensors (see models/demo/README.md).
#
#   bash scripts/demo-model/make-demo-model.sh                # everything; resumes where it stopped
#   bash scripts/demo-model/make-demo-model.sh --stage unet   # one stage: vae|encode|unet|layout|detail|decoder|inpaint|lora|guidance|export|eval
#   bash scripts/demo-model/make-demo-model.sh --from models  # fine-tune the shipped models instead of training anew:
#                                                             # import, encode, [detail, lora], guidance, export, eval
#
# Stages (each resumable; checkpoints and latents live in .cache/demo-train, never in git):
#   venv    .cache/demo-venv from scripts/demo-model/requirements.txt (pinned; openvino pins == package.json)
#   vae     AutoencoderKL on 64x64 crops of drawn images          (VAE_STEPS steps of batch 16; from step 1500 on,
#           object pixels weigh 8x, crops favour objects and the lr decays: see train.py)
#   encode  ENCODE_COUNT training drawings -> VAE posteriors (16x16x4 latents at 128x128)
#   unet    CLIP text encoder + UNet trained jointly, 10 % caption dropout, offset noise 0.15
#           (UNET_STEPS steps of batch UNET_BATCH, cosine lr)
#   layout  text encoder + UNet fine-tuned to take the objects' places from the caption (LAYOUT_STEPS steps of batch 32,
#           lr LAYOUT_LR): half of each batch at t >= LAYOUT_FROM, where a growing share of the samples (up to
#           LAYOUT_SWAP_SHARE at t=999) is noised from another image while the target stays the caption's, and the
#           high-noise samples weighted by their error on the clean latent (capped at LAYOUT_X0_WEIGHT_CAP); see
#           train.py DenoisingLoss. Without it the model ignores position words (position at chance); 0 = skipped.
#   detail  the UNet alone trained again on t < DETAIL_T_BELOW (DETAIL_STEPS steps of batch 32), where the layout is set:
#           recovers the fine shape the layout stage's weighting costs. Inpainting, LoRA and export start from the
#           last of unet EMA / layout / detail that has run (components.base_weights).
#   decoder VAE decoder fine-tuned on full 128x128 drawings, encoder frozen, object pixels weigh 8x (DECODER_STEPS steps of batch 8;
#           0 = skipped)
#   inpaint 9-channel inpainting UNet initialised from the base UNet, fine-tuned on INPAINT_COUNT drawings with
#           object-box, random-box and full masks (INPAINT_STEPS steps of batch 32; the text encoder stays the base's)
#   lora    rank-8 kohya LoRA on the base UNet's linear and 1x1 layers, trained on LORA_COUNT drawings in the
#           "outlined" style captioned with the trigger word (LORA_STEPS steps of batch 32)
#   guidance EXPERIMENTAL, off by default (GUIDANCE_STEPS=0): the base UNet, the inpainting UNet and the LoRA
#           re-trained (each distilled from the model before it) so that guidance GUIDANCE_SCALE (SD's default 7.5)
#           draws what the model before drew at TEACHER_GUIDANCE, the scale where it draws best (GUIDANCE_STEPS,
#           GUIDANCE_INPAINT_STEPS, GUIDANCE_LORA_STEPS of batch 32; base and inpainting side by side, one thread
#           each). Not yet as good at 7.5 as the shipped model is at 2 (models/demo/STATUS.md), so the shipped models
#           were made without it. See train.py distill_guidance. GUIDANCE_ROLLOUT_SHARE of each base batch comes from
#           the student's own sampling at GUIDANCE_SCALE (train.py Rollouts; it took position at 7.5 from 78 % to 89 %).
#   import  (--from DIR only) the cache rebuilt from DIR/demo, DIR/demo-inpaint and DIR/loras/outlined.safetensors
#           (weights read back from the IRs, INT8 dequantised, each module checked against its IR), so the later stages
#           can fine-tune a shipped model when the training cache is gone. With REDETAIL_STEPS > 0 the imported base
#           gets that many more detail steps and a new LoRA (lora stage) fitted to it; the inpainting UNet is kept.
#   export  StableDiffusionPipeline / StableDiffusionInpaintPipeline -> optimum-cli export openvino -> models/demo,
#           models/demo-inpaint (WEIGHT_FORMAT); the LoRA file -> models/loras/outlined.safetensors
#   eval    node scripts/demo-model/evaluate.js: held-out prompts through this library, scored by the judge
# Every training invocation stops after STAGE_MINUTES (checkpointing first) and exits 3; the script
# then simply runs it again, so a killed run loses at most a few minutes. Run it at normal priority
# (under `nice -n 19` on a shared machine it starves).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/scripts/demo-model"
VENV="${DEMO_VENV:-$ROOT/.cache/demo-venv}"
CACHE="${DEMO_CACHE:-$ROOT/.cache/demo-train}"
OUT="${DEMO_OUT:-$ROOT/models/demo}"
INPAINT_OUT="${DEMO_INPAINT_OUT:-$ROOT/models/demo-inpaint}"
LORA_OUT="${DEMO_LORA_OUT:-$ROOT/models/loras/outlined.safetensors}"
REQ="$HERE/requirements.txt"
PY="${PYTHON:-python3}"
VAE_STEPS="${VAE_STEPS:-2200}"
ENCODE_COUNT="${ENCODE_COUNT:-12000}"
UNET_STEPS="${UNET_STEPS:-6400}"
UNET_BATCH="${UNET_BATCH:-32}"
LAYOUT_STEPS="${LAYOUT_STEPS:-3000}"
LAYOUT_FROM="${LAYOUT_FROM:-700}"
LAYOUT_SWAP_SHARE="${LAYOUT_SWAP_SHARE:-0.9}"
LAYOUT_X0_WEIGHT_CAP="${LAYOUT_X0_WEIGHT_CAP:-100}"
LAYOUT_LR="${LAYOUT_LR:-3e-4}"
DETAIL_STEPS="${DETAIL_STEPS:-1000}"
DETAIL_T_BELOW="${DETAIL_T_BELOW:-500}"
REDETAIL_STEPS="${REDETAIL_STEPS:-0}"
DECODER_STEPS="${DECODER_STEPS:-1500}"
INPAINT_STEPS="${INPAINT_STEPS:-3000}"
INPAINT_COUNT="${INPAINT_COUNT:-8000}"
LORA_STEPS="${LORA_STEPS:-600}"
LORA_COUNT="${LORA_COUNT:-3000}"
GUIDANCE_STEPS="${GUIDANCE_STEPS:-0}"
GUIDANCE_INPAINT_STEPS="${GUIDANCE_INPAINT_STEPS:-1500}"
GUIDANCE_LORA_STEPS="${GUIDANCE_LORA_STEPS:-400}"
GUIDANCE_SCALE="${GUIDANCE_SCALE:-7.5}"
TEACHER_GUIDANCE="${TEACHER_GUIDANCE:-1.75}"
GUIDANCE_ROLLOUT_SHARE="${GUIDANCE_ROLLOUT_SHARE:-0.5}"
WEIGHT_FORMAT="${WEIGHT_FORMAT:-int8}"
STAGE_MINUTES="${STAGE_MINUTES:-30}"

die() { echo "make-demo-model: ERROR: $*" >&2; exit 1; }

ONLY=""
FROM=""
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) ONLY="$2"; shift 2 ;;
    --from) FROM="$(cd "$2" && pwd)"; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
# with --from, the stages that train the models from scratch are replaced by the import
trains() { [ -z "$FROM" ] && want "$1"; }

setup_venv() {
  # shellcheck source=scripts/pinned-venv.sh
  source "$ROOT/scripts/pinned-venv.sh"
  pinned_venv make-demo-model "$VENV" "$REQ" "$PY" || exit 1
}

# run a resumable training stage until it reports done (exit 0); exit 3 means "budget used, run again"
resumable() {
  while true; do
    set +e
    (cd "$HERE" && "$VENV/bin/python" train.py "$@" --cache "$CACHE" --minutes "$STAGE_MINUTES")
    local rc=$?
    set -e
    [ $rc -eq 0 ] && return 0
    [ $rc -eq 3 ] || die "train.py $1 failed (exit $rc)"
  done
}

setup_venv
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$CACHE"

if trains vae; then
  if [ -f "$CACHE/vae/done.json" ]; then echo "make-demo-model: vae done" >&2; else resumable vae --steps "$VAE_STEPS"; fi
fi
if [ -n "$FROM" ] && want import; then
  if [ -f "$CACHE/imported/done.json" ]; then echo "make-demo-model: import done" >&2
  else (cd "$HERE" && "$VENV/bin/python" train.py import --cache "$CACHE" --from "$FROM"); fi
fi
if want encode; then
  if [ -f "$CACHE/latents/done.json" ]; then echo "make-demo-model: latents done" >&2
  else (cd "$HERE" && "$VENV/bin/python" train.py encode --cache "$CACHE" --count "$ENCODE_COUNT"); fi
fi
if trains unet; then
  if [ -f "$CACHE/unet/done.json" ]; then echo "make-demo-model: unet done" >&2
  else resumable unet --steps "$UNET_STEPS" --batch "$UNET_BATCH"; fi
fi
if trains layout && [ "$LAYOUT_STEPS" -gt 0 ]; then
  if [ -f "$CACHE/layout/done.json" ]; then echo "make-demo-model: layout done" >&2
  else resumable layout --steps "$LAYOUT_STEPS" --layout-from "$LAYOUT_FROM" --swap-share "$LAYOUT_SWAP_SHARE" \
    --x0-weight-cap "$LAYOUT_X0_WEIGHT_CAP" --lr "$LAYOUT_LR"; fi
fi
# the detail stage: after the layout stage when training anew; with --from, REDETAIL_STEPS more on the imported base
detail_steps=0
if [ -n "$FROM" ]; then detail_steps="$REDETAIL_STEPS"; elif [ "$LAYOUT_STEPS" -gt 0 ]; then detail_steps="$DETAIL_STEPS"; fi
if want detail && [ "$detail_steps" -gt 0 ]; then
  if [ -f "$CACHE/detail/done.json" ]; then echo "make-demo-model: detail done" >&2
  else resumable detail --steps "$detail_steps" --t-below "$DETAIL_T_BELOW"; fi
fi
if trains decoder && [ "$DECODER_STEPS" -gt 0 ]; then
  if [ -f "$CACHE/vae/decoder-done.json" ]; then echo "make-demo-model: decoder done" >&2
  else resumable decoder --steps "$DECODER_STEPS"; fi
fi
if trains inpaint; then
  if [ -f "$CACHE/inpaint/done.json" ]; then echo "make-demo-model: inpaint done" >&2
  else resumable inpaint --steps "$INPAINT_STEPS" --count "$INPAINT_COUNT"; fi
fi
# with --from, a base trained again after the import needs a LoRA fitted to it: the imported one is set aside
if trains lora || { [ -n "$FROM" ] && [ -f "$CACHE/detail/done.json" ] && want lora; }; then
  if grep -q imported_from "$CACHE/lora/done.json" 2>/dev/null; then
    rm -rf "$CACHE/lora-imported" && mv "$CACHE/lora" "$CACHE/lora-imported"
  fi
  if [ -f "$CACHE/lora/done.json" ]; then echo "make-demo-model: lora done" >&2
  else resumable lora --steps "$LORA_STEPS" --count "$LORA_COUNT"; fi
fi
guidance_args=(--guidance-scale "$GUIDANCE_SCALE" --teacher-guidance "$TEACHER_GUIDANCE")
if want guidance && [ "$GUIDANCE_STEPS" -gt 0 ]; then
  # the base and the inpainting UNet are independent: one thread each, side by side (2 cores)
  pids=()
  for stage in guidance guidance-inpaint; do
    steps="$GUIDANCE_STEPS"; [ "$stage" = guidance-inpaint ] && steps="$GUIDANCE_INPAINT_STEPS"
    if [ -f "$CACHE/$stage/done.json" ]; then echo "make-demo-model: $stage done" >&2; continue; fi
    [ "$steps" -gt 0 ] || continue
    extra=(); [ "$stage" = guidance ] && extra=(--rollout-share "$GUIDANCE_ROLLOUT_SHARE")
    DEMO_THREADS=1 resumable "$stage" --steps "$steps" "${guidance_args[@]}" "${extra[@]}" &> "$CACHE/$stage.log" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || die "a guidance stage failed (see $CACHE/guidance*.log)"; done
  if [ -f "$CACHE/guidance-lora/done.json" ]; then echo "make-demo-model: guidance-lora done" >&2
  elif [ "$GUIDANCE_LORA_STEPS" -gt 0 ]; then resumable guidance-lora --steps "$GUIDANCE_LORA_STEPS" "${guidance_args[@]}"; fi
fi
if want export; then
  (cd "$HERE" && "$VENV/bin/python" export.py --cache "$CACHE" --out "$OUT" --weight-format "$WEIGHT_FORMAT")
  (cd "$HERE" && "$VENV/bin/python" export.py --cache "$CACHE" --inpaint --out "$INPAINT_OUT" --weight-format "$WEIGHT_FORMAT")
  mkdir -p "$(dirname "$LORA_OUT")"
  lora="$CACHE/guidance-lora/outlined.safetensors"; [ -f "$CACHE/guidance-lora/done.json" ] || lora="$CACHE/lora/outlined.safetensors"
  cp "$lora" "$LORA_OUT"
fi
if want eval; then
  [ -d "$ROOT/node_modules" ] || (cd "$ROOT" && npm install)
  node "$HERE/evaluate.js" "$OUT" --out "$CACHE/eval-report.json" --sheet "$CACHE/eval-sheet.png"
fi
du -sh "$OUT" 2>/dev/null >&2 || true
