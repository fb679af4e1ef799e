#!/usr/bin/env bash
# Deploy bucketbuild to Google Cloud: a Cloud Functions (gen2) function with an Eventarc trigger
# on object finalize in one bucket, its own service account with the roles it needs, and the
# Pub/Sub topic completion events go to. See README.md for the settings and what each step does.
#
#   PROJECT=my-project BUCKET=my-uploads infra/gcp/deploy.sh
#
# DRY_RUN=1 prints the gcloud commands instead of running them (the staged source is kept).
set -euo pipefail

: "${PROJECT:?set PROJECT (the Google Cloud project id)}"
: "${BUCKET:?set BUCKET (the upload bucket; created when missing)}"
REGION=${REGION:-us-central1}
FUNCTION=${FUNCTION:-bucketbuild}
SERVICE_ACCOUNT=${SERVICE_ACCOUNT:-bucketbuild-fn}
TOPIC=${TOPIC:-bucketbuild-builds}
REPOSITORY=${REPOSITORY:-bucketbuild}
MEMORY=${MEMORY:-4Gi}
CPU=${CPU:-2}
TIMEOUT=${TIMEOUT:-540}
# Builds per instance at once. Builds in one process are isolated (own credentials, temp dirs,
# build log), but each needs its own memory (layer buffers, compression) and /tmp space (the
# context, the RUN trees, layers: /tmp is memory on Cloud Run), all within MEMORY. Keep 1 unless
# MEMORY has room for that many builds; scaling out (--max-instances) costs no isolation.
CONCURRENCY=${CONCURRENCY:-1}
DESTINATION=${DESTINATION:-$REGION-docker.pkg.dev/$PROJECT/$REPOSITORY/{name}:{version}}
ALLOWED_DESTINATIONS=${ALLOWED_DESTINATIONS:-$REGION-docker.pkg.dev/$PROJECT/$REPOSITORY/*}
DOCKER_CONFIG_SECRET=${DOCKER_CONFIG_SECRET:-}   # projects/P/secrets/S, optional

root=$(cd "$(dirname "$0")/../.." && pwd)
sa_email="$SERVICE_ACCOUNT@$PROJECT.iam.gserviceaccount.com"

run() {
  if [[ -n "${DRY_RUN:-}" ]]; then
    printf '%q ' "$@"
    printf '\n'
  else
    "$@"
  fi
}

exists() {  # true when the describe command succeeds (always false in a dry run)
  [[ -z "${DRY_RUN:-}" ]] && "$@" >/dev/null 2>&1
}

stage_source() {  # core/, handlers/, main.py at the root, requirements.txt
  local dir=$1
  mkdir -p "$dir"
  cp -r "$root/core" "$root/handlers" "$dir/"
  cp "$root/handlers/main.py" "$dir/main.py"
  cp "$root/infra/function/requirements.txt" "$dir/requirements.txt"
  find "$dir" -name __pycache__ -type d -prune -exec rm -rf {} +
}

write_env() {  # an env-vars file (values may hold commas, which --set-env-vars cannot)
  local file=$1
  {
    echo "BUCKETBUILD_DESTINATION: '$DESTINATION'"
    echo "BUCKETBUILD_ALLOWED_DESTINATIONS: '$ALLOWED_DESTINATIONS'"
    echo "BUCKETBUILD_PUBSUB_TOPIC: 'projects/$PROJECT/topics/$TOPIC'"
    echo "BUCKETBUILD_TIMEOUT: '$TIMEOUT'"
    echo "BUCKETBUILD_TIMEOUT_MARGIN: '30'"
    echo "BUCKETBUILD_WORK_ROOT: '/tmp/bucketbuild'"
    if [[ -n "$DOCKER_CONFIG_SECRET" ]]; then
      echo "BUCKETBUILD_DOCKER_CONFIG: 'sm://$DOCKER_CONFIG_SECRET'"
    fi
  } > "$file"
}

enable_services() {
  run gcloud services enable --project "$PROJECT" cloudfunctions.googleapis.com \
    run.googleapis.com eventarc.googleapis.com pubsub.googleapis.com \
    artifactregistry.googleapis.com cloudbuild.googleapis.com storage.googleapis.com
}

create_resources() {
  exists gcloud storage buckets describe "gs://$BUCKET" --project "$PROJECT" ||
    run gcloud storage buckets create "gs://$BUCKET" --project "$PROJECT" \
      --location "$REGION" --uniform-bucket-level-access
  run gcloud storage buckets update "gs://$BUCKET" --project "$PROJECT" --versioning
  exists gcloud pubsub topics describe "$TOPIC" --project "$PROJECT" ||
    run gcloud pubsub topics create "$TOPIC" --project "$PROJECT"
  exists gcloud artifacts repositories describe "$REPOSITORY" --project "$PROJECT" \
      --location "$REGION" ||
    run gcloud artifacts repositories create "$REPOSITORY" --project "$PROJECT" \
      --location "$REGION" --repository-format docker
  exists gcloud iam service-accounts describe "$sa_email" --project "$PROJECT" ||
    run gcloud iam service-accounts create "$SERVICE_ACCOUNT" --project "$PROJECT" \
      --display-name "bucketbuild function"
}

grant_roles() {
  local member="serviceAccount:$sa_email"
  run gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" --project "$PROJECT" \
    --member "$member" --role roles/storage.objectUser
  run gcloud artifacts repositories add-iam-policy-binding "$REPOSITORY" --project "$PROJECT" \
    --location "$REGION" --member "$member" --role roles/artifactregistry.writer
  run gcloud pubsub topics add-iam-policy-binding "$TOPIC" --project "$PROJECT" \
    --member "$member" --role roles/pubsub.publisher
  run gcloud projects add-iam-policy-binding "$PROJECT" --member "$member" \
    --role roles/eventarc.eventReceiver --condition None
  run gcloud projects add-iam-policy-binding "$PROJECT" --member "$member" \
    --role roles/run.invoker --condition None
  if [[ -n "$DOCKER_CONFIG_SECRET" ]]; then
    run gcloud secrets add-iam-policy-binding "${DOCKER_CONFIG_SECRET##*/}" \
      --project "$PROJECT" --member "$member" --role roles/secretmanager.secretAccessor
  fi
  # Eventarc's storage triggers publish through the Cloud Storage service agent
  local agent="service-PROJECT_NUMBER@gs-project-accounts.iam.gserviceaccount.com"
  if [[ -z "${DRY_RUN:-}" ]]; then
    agent=$(gcloud storage service-agent --project "$PROJECT")
  fi
  run gcloud projects add-iam-policy-binding "$PROJECT" --member "serviceAccount:$agent" \
    --role roles/pubsub.publisher --condition None
}

deploy_function() {
  local stage=$1
  run gcloud functions deploy "$FUNCTION" --gen2 --project "$PROJECT" --region "$REGION" \
    --runtime python311 --source "$stage/source" --entry-point on_finalize \
    --trigger-event-filters "type=google.cloud.storage.object.v1.finalized" \
    --trigger-event-filters "bucket=$BUCKET" --trigger-service-account "$sa_email" \
    --service-account "$sa_email" --memory "$MEMORY" --cpu "$CPU" \
    --timeout "${TIMEOUT}s" --concurrency "$CONCURRENCY" --max-instances 20 --retry \
    --env-vars-file "$stage/env.yaml"
}

main() {
  local stage
  stage=$(mktemp -d "${TMPDIR:-/tmp}/bucketbuild-deploy.XXXXXX")
  [[ -n "${DRY_RUN:-}" ]] || trap 'rm -rf "$stage"' EXIT
  stage_source "$stage/source"
  write_env "$stage/env.yaml"
  enable_services
  create_resources
  grant_roles
  deploy_function "$stage"
  echo "staged source: $stage" >&2
}

main "$@"
