{{/*
The RayService's serveConfigV2, from `.Values.serve`. It is the document that
`python -m models.serve.config` builds with models/serve/app.py's AppSettings and
serve_config (the code `make run` deploys with); `make deploy-check` fails when the two
differ, so a change to the app's user_config keys must be made in both.
*/}}
{{- define "loupe.serveConfig" -}}
{{- $s := .Values.serve -}}
{{- $m := $s.models -}}
{{- $c := $s.challenger | default dict -}}
{{- $hasChallenger := not (empty $c.classifierUri) -}}
{{- $batching := dict "max_batch_size" $s.maxBatchSize "batch_wait_timeout_s" $s.batchWaitTimeoutS -}}
{{- $ingress := dict "challenger_share" (ternary ($c.share | default 0.0) 0.0 $hasChallenger) "experiment" (ternary ($c.experiment | default "") "" $hasChallenger) "timeout_s" $s.timeoutS "min_region_px" $s.minRegionPx -}}
{{- $configs := list (dict "name" "Ingress" "user_config" $ingress) -}}
{{- $arms := list (dict "prefix" "" "pair" $m) -}}
{{- if $hasChallenger }}{{ $arms = append $arms (dict "prefix" "Challenger" "pair" $c) }}{{ end -}}
{{- range $arms -}}
{{- $pair := .pair -}}
{{- if $pair.detectorUri -}}
{{- $detector := merge (dict "threshold" $s.detectorThreshold "max_regions" $s.maxRegions "model_dir" $pair.detectorUri) $batching -}}
{{- $configs = append $configs (dict "name" (printf "%sDetector" .prefix) "user_config" $detector) -}}
{{- end -}}
{{- $classifier := merge (dict "language" $s.language "prompt_version" $s.promptVersion "model_dir" $pair.classifierUri "adapter_dir" ($pair.classifierAdapterUri | default "") "temperature" 1.0) $batching -}}
{{- $configs = append $configs (dict "name" (printf "%sClassifier" .prefix) "user_config" $classifier) -}}
{{- end -}}
{{- $deployments := list -}}
{{- range $configs -}}
{{- $kind := trimPrefix "Challenger" .name -}}
{{- $options := deepCopy (index $s.deployments .name | default (index $s.deployments $kind) | default dict) -}}
{{- $deployments = append $deployments (merge (deepCopy .) $options) -}}
{{- end -}}
{{- $args := dict "champion_detector" (not (empty $m.detectorUri)) "challenger" $hasChallenger "challenger_detector" (and $hasChallenger (not (empty $c.detectorUri))) "device" $s.device "actor_options" nil -}}
{{- $logs := dict "encoding" "JSON" "log_level" "INFO" -}}
{{- $app := dict "name" "inspection" "route_prefix" "/inspection" "import_path" "models.serve.app:app_builder" "args" $args "deployments" $deployments "logging_config" $logs -}}
{{- $config := dict "proxy_location" "EveryNode" "http_options" (dict "host" "0.0.0.0" "port" 8000) "logging_config" $logs "applications" (list $app) -}}
{{- toYaml $config -}}
{{- end -}}
