{{/* Names and labels. */}}
{{- define "loupe.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "loupe.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "web"). */}}
{{- define "loupe.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "loupe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "loupe.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "loupe.image" -}}
{{ printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end -}}

{{/* The Service KubeRay puts in front of the Serve proxies: <RayService name>-serve-svc. */}}
{{- define "loupe.serveUrl" -}}
{{- printf "http://%s-serve-svc.%s.svc:8000/inspection" (include "loupe.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "loupe.secretRef" -}}
valueFrom:
  secretKeyRef:
    name: {{ .root.Values.secrets.existingSecret }}
    key: {{ .key }}
{{- end -}}

{{/*
The settings every Loupe process reads (app/config.py, LOUPE_*), one list for all pods, so
that web, relay, beat, workers, Serve and the migration never disagree. Secrets come from
the site's existing Secret; passwords are spliced into the URLs by Kubernetes' $(VAR)
expansion, which needs the variable defined above its use (so: URL-safe passwords).
*/}}
{{- define "loupe.env" -}}
{{- $v := .Values -}}
- name: LOUPE_ENVIRONMENT
  value: {{ $v.site.environment | quote }}
- name: LOUPE_PUBLIC_URL
  value: {{ $v.site.publicUrl | quote }}
- name: LOUPE_SITE_TIMEZONE
  value: {{ $v.site.timezone | quote }}
- name: LOUPE_SECRET_KEY
  {{- include "loupe.secretRef" (dict "root" . "key" $v.secrets.keys.secretKey) | nindent 2 }}
- name: DATABASE_PASSWORD
  {{- include "loupe.secretRef" (dict "root" . "key" $v.secrets.keys.databasePassword) | nindent 2 }}
- name: LOUPE_DATABASE_URL
  value: {{ printf "postgresql+psycopg://%s:$(DATABASE_PASSWORD)@%s:%v/%s?sslmode=%s" $v.database.user $v.database.host $v.database.port $v.database.name $v.database.sslmode | quote }}
{{- if $v.secrets.keys.redisPassword }}
- name: REDIS_PASSWORD
  {{- include "loupe.secretRef" (dict "root" . "key" $v.secrets.keys.redisPassword) | nindent 2 }}
- name: LOUPE_REDIS_URL
  value: {{ printf "%s://:$(REDIS_PASSWORD)@%s:%v/%v" (ternary "rediss" "redis" $v.redis.tls) $v.redis.host $v.redis.port $v.redis.db | quote }}
{{- else }}
- name: LOUPE_REDIS_URL
  value: {{ printf "%s://%s:%v/%v" (ternary "rediss" "redis" $v.redis.tls) $v.redis.host $v.redis.port $v.redis.db | quote }}
{{- end }}
- name: LOUPE_S3_BUCKET
  value: {{ $v.s3.bucket | quote }}
- name: LOUPE_S3_ENDPOINT_URL
  value: {{ $v.s3.endpointUrl | quote }}
- name: LOUPE_S3_REGION
  value: {{ $v.s3.region | quote }}
- name: LOUPE_S3_PREFIX
  value: {{ $v.s3.prefix | quote }}
{{- if $v.secrets.keys.s3AccessKeyId }}
- name: LOUPE_S3_ACCESS_KEY_ID
  {{- include "loupe.secretRef" (dict "root" . "key" $v.secrets.keys.s3AccessKeyId) | nindent 2 }}
- name: LOUPE_S3_SECRET_ACCESS_KEY
  {{- include "loupe.secretRef" (dict "root" . "key" $v.secrets.keys.s3SecretAccessKey) | nindent 2 }}
{{- end }}
- name: LOUPE_SERVE_URL
  value: {{ include "loupe.serveUrl" . | quote }}
- name: LOUPE_DETECTOR_URI
  value: {{ $v.serve.models.detectorUri | quote }}
- name: LOUPE_CLASSIFIER_URI
  value: {{ $v.serve.models.classifierUri | quote }}
{{- /* The thresholds the web app routes with are the ones Serve detects with. */}}
- name: LOUPE_DETECTOR_THRESHOLD
  value: {{ $v.serve.detectorThreshold | quote }}
- name: LOUPE_DETECTOR_MAX_REGIONS
  value: {{ $v.serve.maxRegions | quote }}
- name: LOUPE_MIN_REGION_PX
  value: {{ $v.serve.minRegionPx | quote }}
- name: LOUPE_CLASSIFIER_LANGUAGE
  value: {{ $v.serve.language | quote }}
- name: LOUPE_PROMPT_VERSION
  value: {{ $v.serve.promptVersion | quote }}
- name: LOUPE_MODEL_CACHE_DIR
  value: /var/cache/loupe/models
- name: LOUPE_LOG_FORMAT
  value: json
{{- if $v.prompts.existingClaim }}
- name: LOUPE_PROMPTS_DIR
  value: /srv/prompts
{{- end }}
- name: NO_ALBUMENTATIONS_UPDATE
  value: "1"
- name: RAY_USAGE_STATS_ENABLED
  value: "0"
{{- range $name, $value := $v.site.extraEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{- define "loupe.podSpecCommon" -}}
serviceAccountName: {{ include "loupe.serviceAccountName" . }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{/* nodeSelector, tolerations and affinity of one component's values. */}}
{{- define "loupe.placement" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The cache that s3:// models are downloaded into, and /tmp, on every Loupe pod. */}}
{{- define "loupe.volumes" -}}
- name: tmp
  emptyDir: {}
- name: model-cache
  emptyDir:
    sizeLimit: {{ .Values.modelCacheSize }}
{{- include "loupe.promptsVolume" . }}
{{- end -}}

{{/* The site's prompt versions (`loupe prompts few-shot`): one ReadWriteMany volume that
the web app writes and the workers and Serve read, as compose's `prompts` volume. */}}
{{- define "loupe.promptsVolume" -}}
{{- if .Values.prompts.existingClaim }}
- name: prompts
  persistentVolumeClaim:
    claimName: {{ .Values.prompts.existingClaim }}
{{- end }}
{{- end -}}

{{- define "loupe.promptsMount" -}}
{{- if .Values.prompts.existingClaim }}
- name: prompts
  mountPath: /srv/prompts
{{- end }}
{{- end -}}

{{- define "loupe.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: model-cache
  mountPath: /var/cache/loupe
{{- include "loupe.promptsMount" . }}
{{- end -}}

{{/* Celery's ping, as compose's health check: the worker answers on the broker. */}}
{{- define "loupe.celeryPing" -}}
exec:
  command: ["sh", "-c", "celery -A workers.celery_app inspect ping -d celery@$HOSTNAME --timeout 10"]
initialDelaySeconds: 60
periodSeconds: 60
timeoutSeconds: 30
failureThreshold: 3
{{- end -}}

{{/* What the Serve replicas need beyond Loupe's settings (models/serve/runner.py sets
the same under `make run`). */}}
{{- define "loupe.rayEnv" -}}
- name: RAY_SERVE_USE_GRPC_BY_DEFAULT
  value: "1"
- name: LOUPE_MODEL_DEVICE
  value: {{ .Values.serve.device | quote }}
{{- end -}}

{{/* Ray keeps its object store in /dev/shm, which a container gets only 64 MiB of. */}}
{{- define "loupe.rayVolumes" -}}
- name: tmp
  emptyDir: {}
- name: model-cache
  emptyDir:
    sizeLimit: {{ .group.modelCacheSize }}
- name: dshm
  emptyDir:
    medium: Memory
    sizeLimit: {{ .group.shmSize }}
{{- include "loupe.promptsVolume" .root }}
{{- end -}}

{{- define "loupe.rayVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: model-cache
  mountPath: /var/cache/loupe
- name: dshm
  mountPath: /dev/shm
{{- include "loupe.promptsMount" . }}
{{- end -}}
