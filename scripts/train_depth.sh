#!/usr/bin/env bash
# Train the shipped depth networks: per modality a teacher, a student distilled from it (on
# the labeled streets plus 60 streets whose ground truth it never sees: unlabeled video, where
# only the teacher can supervise), and the same student without distillation (the baseline
# issue 5 compares against), both students on the same schedule.
# Usage: bash scripts/train_depth.sh [visible|thermal ...]   (runs resume where they stopped)
# Schedule: teacher 1000 steps, resumed to 2500 (a second cosine cycle); students in cosine
# cycles of 2000 steps, each resumed from the last (2000, 4000, 6000: the shipped thermal one).
# Environment: STUDENT_CYCLES (default "2000 4000 6000"), TEACHER_STEPS (default 2500),
# THREADS (torch threads per run, default: all), TUNE=1 (then the fine-tuning stage below;
# sessions 7-8 ran it for visible only; its plain_ft2 was the shipped visible student to session 12),
# FOV=1 (thermal only, session 11: the thermal camera's own 50 deg field of view, below),
# STRONG_TEACHER=1 (visible only, sessions 12-13: a stronger teacher, students from scratch and
# fine-tuned, below; its plain_s12_ft2 is the shipped visible student), TWO_CAMERA_TEACHER=1
# (visible only, session 14, after STRONG_TEACHER: a teacher that sees RGB and thermal, below),
# NIGHT_R2=1 (session 15, after STRONG_TEACHER and FOV: cycles on the revised night, below),
# ON_TOP=1 (visible only, session 16, after NIGHT_R2: unlabeled streets on top of the labeled batch,
# then depth-only gated imitation), SCRATCH_R2=1 (visible only, session 17, after NIGHT_R2: both
# student lineages from scratch on the revised night, below), BASE=0 (skip the first stage: run
# only the stages named).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin/ldf-ros
cycles=${STUDENT_CYCLES:-2000 4000 6000}
threads=${THREADS:-0}
modalities=("$@")
# The FOV and STRONG_TEACHER recipe: a teacher (2500 steps, then a 2000-step fine-tune at 5e-4,
# into <teacher>_ft) and, from scratch, a student distilled from it (with 60 unlabeled streets)
# and a plain one, in cosine cycles up to 8000 steps.
# Arguments: teacher_out distilled_out plain_out, then the flags every run shares.
teacher_and_students_from_scratch() {
  local teacher=$1 distilled=$2 plain=$3 steps
  shift 3
  $bin train depth "$@" --role teacher --steps 2500 --out "$teacher"
  $bin train depth "$@" --role teacher --steps 2000 --lr 5e-4 --init "$teacher/model.safetensors" --out "${teacher}_ft"
  for steps in $cycles 8000; do
    $bin train depth "$@" --role student --steps "$steps" --unlabeled-streets 60 \
         --teacher "${teacher}_ft/model.safetensors" --out "$distilled"
    $bin train depth "$@" --role student --steps "$steps" --out "$plain"
  done
}
[ ${#modalities[@]} -eq 0 ] && modalities=(visible thermal)
for m in "${modalities[@]}"; do
  if [ "${BASE:-1}" = 1 ]; then
  # the teacher: 1000 steps (config), then resumed to 2500 (a second cosine cycle), as the
  # shipped runs were; at 1000 steps it is worse than the students trained for 2000
  $bin train depth --config config/train_depth.yaml --modality "$m" --role teacher --threads "$threads" \
       --out "out/train/depth_${m}_teacher"
  $bin train depth --config config/train_depth.yaml --modality "$m" --role teacher --threads "$threads" \
       --steps "${TEACHER_STEPS:-2500}" --out "out/train/depth_${m}_teacher"
  for steps in $cycles; do
    $bin train depth --config config/train_depth.yaml --modality "$m" --role student --threads "$threads" --steps "$steps" \
         --teacher "out/train/depth_${m}_teacher/model.safetensors" --unlabeled-streets 60 --out "out/train/depth_${m}_student_v3"
    $bin train depth --config config/train_depth.yaml --modality "$m" --role student --threads "$threads" --steps "$steps" \
         --out "out/train/depth_${m}_student_plain_v2"
  done
  fi
  if [ "${SCRATCH_R2:-0}" = 1 ] && [ "$m" = visible ]; then
    # session 17: the visible students from scratch on the revised night (every earlier visible
    # lineage learned night on revision 1 for its first 12000 steps), in cosine cycles to 8000,
    # then four fine-tuning cycles (fresh AdamW, 5e-4, 2000 steps each: <run>_ft to <run>_ft4;
    # session 17 ran two, session 18 two more, to plain_r2b's 16000 steps):
    # distilled from the shipped teacher (teacher_r2) without unlabeled streets, gated from the
    # first step (session 13: the gate beat ungated imitation everywhere), and plain; the two run
    # side by side (one thread each) and each cycle's end is kept as <run>_<steps>.
    # SCRATCH_SEED=1 replicates both lineages with seed 1 (<run>_seed1; session 18 ran it with
    # SCRATCH_CYCLES="2000 4000" SCRATCH_FT=""); SCRATCH_CYCLES and SCRATCH_FT shorten a lineage
    local_seed=${SCRATCH_SEED:-0}
    seed_sfx=""; [ "$local_seed" != 0 ] && seed_sfx="_seed$local_seed"
    vis=(--config config/train_depth.yaml --modality visible --threads "$threads" --role student --seed "$local_seed")
    s=out/train/depth_visible_student
    lineage() {
      local out=$1$seed_sfx steps prev sfx
      shift
      for steps in ${SCRATCH_CYCLES:-$cycles 8000}; do
        # a cycle already kept is done (rerunning it would copy a later state over its copy)
        [ -f "${out}_$steps/model.safetensors" ] && continue
        $bin train depth "${vis[@]}" --steps "$steps" "$@" --out "$out"
        rm -rf "${out}_$steps" && cp -r "$out" "${out}_$steps"
      done
      prev=$out
      for sfx in ${SCRATCH_FT-ft ft2 ft3 ft4}; do
        $bin train depth "${vis[@]}" --steps 2000 --lr 5e-4 "$@" --init "$prev/model.safetensors" --out "${out}_$sfx"
        prev=${out}_$sfx
      done
    }
    lineage "${s}_gated_scratch_r2" --unlabeled-streets 0 --distill-gate \
            --teacher out/train/depth_visible_teacher_r2/model.safetensors &
    lineage "${s}_plain_scratch_r2" &
    wait
  fi
  if [ "${FOV:-0}" = 1 ] && [ "$m" = thermal ]; then
    # at run time the thermal branch sees the thermal camera's window of the RGB frame (50 of
    # 66 deg), so it learns with that field of view: a teacher from scratch plus one more cosine
    # cycle; students from scratch with it (distilled: shipped) and fine-tuned from the 66 deg ones
    fov=(--config config/train_depth.yaml --modality thermal --threads "$threads" --camera-hfov 50)
    # the shipped thermal teacher (teacher_fov50_ft) and student (v3_fov50, 8000 since session 12)
    teacher_and_students_from_scratch out/train/depth_thermal_teacher_fov50 out/train/depth_thermal_student_v3_fov50 \
         out/train/depth_thermal_student_plain_v2_scratch_fov50 "${fov[@]}"
    # fine-tuning the 66 deg students to 50 deg instead (measured, not shipped)
    $bin train depth "${fov[@]}" --role student --steps 2000 --lr 5e-4 --init out/train/depth_thermal_student_v3/model.safetensors \
         --teacher out/train/depth_thermal_teacher_fov50_ft/model.safetensors --unlabeled-streets 60 \
         --out out/train/depth_thermal_student_distilled_fov50
    $bin train depth "${fov[@]}" --role student --steps 2000 --lr 5e-4 --init out/train/depth_thermal_student_v3/model.safetensors \
         --out out/train/depth_thermal_student_plain_fov50
    $bin train depth "${fov[@]}" --role student --steps 2000 --lr 5e-4 --init out/train/depth_thermal_student_plain_v2/model.safetensors \
         --out out/train/depth_thermal_student_plain_v2_fov50
  fi
  if [ "${STRONG_TEACHER:-0}" = 1 ] && [ "$m" = visible ]; then
    # session 12: the thermal 50 deg recipe for the visible branch (shipped visible teacher:
    # 2500 steps + a 2000-step fine-tune at 5e-4), then students from scratch, distilled from it
    # and plain, cycles up to 8000
    vis=(--config config/train_depth.yaml --modality visible --threads "$threads")
    teacher_and_students_from_scratch out/train/depth_visible_teacher_s12 out/train/depth_visible_student_v3_s12 \
         out/train/depth_visible_student_plain_v2_s12 "${vis[@]}"
    # session 13: two fine-tuning cycles (fresh AdamW, 5e-4, 2000 steps each) for the plain
    # student (its ft2: the shipped visible student since session 13) and for the student
    # distilled without the unlabeled streets (8000 steps from scratch first), gated and not in
    # the second cycle; and the plain student's first fine-tune distilled in its second cycle
    teacher=out/train/depth_visible_teacher_s12_ft/model.safetensors
    teacher2_dir=out/train/depth_visible_teacher_s12_ft2
    teacher2=$teacher2_dir/model.safetensors
    tune=("${vis[@]}" --role student --steps 2000 --lr 5e-4)
    s=out/train/depth_visible_student
    for steps in $cycles 8000; do
      $bin train depth "${vis[@]}" --role student --steps "$steps" --unlabeled-streets 0 --teacher "$teacher" \
           --out "${s}_nounl_s12"
    done
    $bin train depth "${tune[@]}" --init "${s}_plain_v2_s12/model.safetensors" --out "${s}_plain_s12_ft"
    $bin train depth "${tune[@]}" --init "${s}_plain_s12_ft/model.safetensors" --out "${s}_plain_s12_ft2"
    $bin train depth "${tune[@]}" --teacher "$teacher" --init "${s}_plain_s12_ft/model.safetensors" \
         --out "${s}_plainft_distilled_s12_ft2"
    $bin train depth "${tune[@]}" --teacher "$teacher" --init "${s}_nounl_s12/model.safetensors" --out "${s}_nounl_s12_ft"
    $bin train depth "${tune[@]}" --teacher "$teacher" --init "${s}_nounl_s12_ft/model.safetensors" --out "${s}_nounl_s12_ft2"
    $bin train depth "${tune[@]}" --teacher "$teacher" --distill-gate --init "${s}_nounl_s12_ft/model.safetensors" \
         --out "${s}_nounl_gated_s12_ft2"
    # the teacher one more cycle, and the gated second cycle distilled from it instead
    $bin train depth "${vis[@]}" --role teacher --steps 2000 --lr 5e-4 --init "$teacher" --out "$teacher2_dir"
    $bin train depth "${tune[@]}" --teacher "$teacher2" --distill-gate --init "${s}_nounl_s12_ft/model.safetensors" \
         --out "${s}_nounl_gated_s12_ft2_t2"
  fi
  if [ "${TWO_CAMERA_TEACHER:-0}" = 1 ] && [ "$m" = visible ]; then
    # session 14: a teacher that sees RGB and thermal stacked (rgb_thermal; the session-12 teacher
    # recipe: 2500 steps, then a 2000-step fine-tune at 5e-4), distilled into the visible
    # student's fine-tuning cycles in place of the visible teacher: the gated second cycle from
    # nounl_s12_ft, and the first cycle from nounl_s12 (ungated, as session 13; its gated second
    # cycle was stopped at step 160 once the first measured worse); then the plain lineage's
    # second cycle gated from the visible teacher, seeds 0 and 1 (against plain_s12_ft2 and its
    # seed 1, which start from the same plain_s12_ft)
    rgbt=(--config config/train_depth.yaml --modality rgb_thermal --role teacher --threads "$threads")
    rgbt_dir=out/train/depth_rgb_thermal_teacher
    $bin train depth "${rgbt[@]}" --steps 2500 --out "$rgbt_dir"
    $bin train depth "${rgbt[@]}" --steps 2000 --lr 5e-4 --init "$rgbt_dir/model.safetensors" --out "${rgbt_dir}_ft"
    tune=(--config config/train_depth.yaml --modality visible --threads "$threads" --role student --steps 2000 --lr 5e-4)
    s=out/train/depth_visible_student
    $bin train depth "${tune[@]}" --teacher "${rgbt_dir}_ft/model.safetensors" --distill-gate \
         --init "${s}_nounl_s12_ft/model.safetensors" --out "${s}_nounl_gated_s12_ft2_rgbt"
    $bin train depth "${tune[@]}" --teacher "${rgbt_dir}_ft/model.safetensors" \
         --init "${s}_nounl_s12/model.safetensors" --out "${s}_rgbt_s12_ft"
    plain_gated=("${tune[@]}" --teacher out/train/depth_visible_teacher_s12_ft/model.safetensors --distill-gate
                 --init "${s}_plain_s12_ft/model.safetensors")
    $bin train depth "${plain_gated[@]}" --seed 0 --out "${s}_plainft_gated_s12_ft2"
    $bin train depth "${plain_gated[@]}" --seed 1 --out "${s}_plainft_gated_s12_ft2_seed1"
  fi
  if [ "${NIGHT_R2:-0}" = 1 ] && [ "$m" = visible ]; then
    # session 15: night revision 2 (bounded lamp bloom; the night clips re-render under new
    # names). One more 2000-step cycle at 5e-4 on the re-rendered clips for the teacher (from
    # teacher_s12_ft) and, seeds 0 and 1, for the plain student (from plain_s12_ft2) and the
    # gated distilled one (from nounl_gated_s12_ft2, gated from the new teacher)
    tune=(--config config/train_depth.yaml --modality visible --threads "$threads" --steps 2000 --lr 5e-4)
    s=out/train/depth_visible_student
    $bin train depth "${tune[@]}" --role teacher --init out/train/depth_visible_teacher_s12_ft/model.safetensors \
         --out out/train/depth_visible_teacher_r2
    for seed in 0 1; do
      sfx=$([ "$seed" = 0 ] || echo "_seed$seed")
      $bin train depth "${tune[@]}" --role student --seed "$seed" --init "${s}_plain_s12_ft2${sfx}/model.safetensors" \
           --out "${s}_plain_r2${sfx}"
      $bin train depth "${tune[@]}" --role student --seed "$seed" --init "${s}_nounl_gated_s12_ft2${sfx}/model.safetensors" \
           --teacher out/train/depth_visible_teacher_r2/model.safetensors --distill-gate --out "${s}_gated_r2${sfx}"
    done
    # a second such cycle for the seed-0 pair (plain_r2b: the shipped visible student since session 15)
    $bin train depth "${tune[@]}" --role student --init "${s}_plain_r2/model.safetensors" --out "${s}_plain_r2b"
    $bin train depth "${tune[@]}" --role student --init "${s}_gated_r2/model.safetensors" \
         --teacher out/train/depth_visible_teacher_r2/model.safetensors --distill-gate --out "${s}_gated_r2b"
  fi
  if [ "${ON_TOP:-0}" = 1 ] && [ "$m" = visible ]; then
    # session 16, after NIGHT_R2: the plain student's second revision-2 cycle distilled instead,
    # with the teacher's 60 unlabeled streets on top of the labeled batch (8 + 8 frames a step;
    # the labeled frames are those plain_r2b sees, in the same order), gated; seeds 0 and 1
    # against plain_r2b and its seed 1 (same init, same steps)
    tune=(--config config/train_depth.yaml --modality visible --threads "$threads" --steps 2000 --lr 5e-4 --role student)
    s=out/train/depth_visible_student
    for seed in 0 1; do
      sfx=$([ "$seed" = 0 ] || echo "_seed$seed")
      $bin train depth "${tune[@]}" --seed "$seed" --init "${s}_plain_r2${sfx}/model.safetensors" \
           --teacher out/train/depth_visible_teacher_r2/model.safetensors --distill-gate --unlabeled-streets 60 \
           --unlabeled-batch 8 --out "${s}_ontop_r2b${sfx}"
    done
    $bin train depth "${tune[@]}" --seed 1 --init "${s}_plain_r2_seed1/model.safetensors" --out "${s}_plain_r2b_seed1"
    # then the same cycle distilled on the labeled frames only, gated, imitating the teacher's
    # depth alone (no feature or distance-category terms): where the teacher is closer to the
    # ground truth than the student, the student gets pulled harder there
    depth_only=out/train/train_depth_imitate_depth_only.yaml
    sed 's/^distill_feature_weight: .*/distill_feature_weight: 0.0/; s/^distill_bins_weight: .*/distill_bins_weight: 0.0/' \
        config/train_depth.yaml > "$depth_only"
    for seed in 0 1; do
      sfx=$([ "$seed" = 0 ] || echo "_seed$seed")
      $bin train depth "${tune[@]}" --config "$depth_only" --seed "$seed" --init "${s}_plain_r2${sfx}/model.safetensors" \
           --teacher out/train/depth_visible_teacher_r2/model.safetensors --distill-gate --out "${s}_depthonly_r2b${sfx}"
    done
  fi
  if [ "${NIGHT_R2:-0}" = 1 ] && [ "$m" = thermal ]; then
    # session 15, for parity with the visible branch: one more 2000-step cycle at 5e-4 for both
    # 8000-step 50 deg thermal students, each on its own lineage's terms (v3_fov50_r2: the
    # shipped thermal student since session 15). The thermal images are the same in revision 2.
    tune=(--config config/train_depth.yaml --modality thermal --threads "$threads" --camera-hfov 50 --role student
          --steps 2000 --lr 5e-4)
    s=out/train/depth_thermal_student
    $bin train depth "${tune[@]}" --init "${s}_v3_fov50/model.safetensors" --unlabeled-streets 60 \
         --teacher out/train/depth_thermal_teacher_fov50_ft/model.safetensors --out "${s}_v3_fov50_r2"
    $bin train depth "${tune[@]}" --init "${s}_plain_v2_scratch_fov50/model.safetensors" --out "${s}_plain_fov50_r2"
  fi
  [ "${TUNE:-0}" = 1 ] || continue
  # fine-tuning stage (fresh AdamW, learning rate 5e-4, cosine over 2000 steps): the teacher
  # once; the plain student twice; from the first plain fine-tune, the student distilled from
  # the fine-tuned teacher, gated and ungated, against the second plain fine-tune (same steps)
  tune=(--config config/train_depth.yaml --modality "$m" --threads "$threads" --steps 2000 --lr 5e-4)
  $bin train depth "${tune[@]}" --role teacher --init "out/train/depth_${m}_teacher/model.safetensors" \
       --out "out/train/depth_${m}_teacher_ft"
  $bin train depth "${tune[@]}" --role student --init "out/train/depth_${m}_student_plain_v2/model.safetensors" \
       --out "out/train/depth_${m}_student_plain_ft"
  $bin train depth "${tune[@]}" --role student --init "out/train/depth_${m}_student_plain_ft/model.safetensors" \
       --out "out/train/depth_${m}_student_plain_ft2"
  distil=(--init "out/train/depth_${m}_student_plain_ft/model.safetensors" --unlabeled-streets 60
          --teacher "out/train/depth_${m}_teacher_ft/model.safetensors")
  $bin train depth "${tune[@]}" --role student "${distil[@]}" --distill-gate --out "out/train/depth_${m}_student_gated_ft2"
  $bin train depth "${tune[@]}" --role student "${distil[@]}" --out "out/train/depth_${m}_student_distilled_ft2"
done
