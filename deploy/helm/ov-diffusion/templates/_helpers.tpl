{{- define "ovd.name" -}}{{ .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}

{{- define "ovd.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "ovd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ovd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ovd.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{ include "ovd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "ovd.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{- end -}}

{{/* The Secret holding the API key, or "" */}}
{{- define "ovd.apiKeySecret" -}}
{{- if .Values.apiKey.existingSecret -}}{{ .Values.apiKey.existingSecret }}
{{- else if .Values.apiKey.create -}}{{ include "ovd.fullname" . }}-api-key{{- end -}}
{{- end -}}

{{- define "ovd.modelsClaim" -}}
{{- if .Values.models.existingClaim -}}{{ .Values.models.existingClaim }}
{{- else if .Values.models.create -}}{{ include "ovd.fullname" . }}-models{{- end -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: preStop sleep + the server's shutdown timeout + a margin */}}
{{- define "ovd.gracePeriod" -}}
{{- add .Values.server.preStopSleepSeconds .Values.server.shutdownTimeoutSeconds .Values.server.terminationMarginSeconds -}}
{{- end -}}

{{/* Peak RSS figures (bench/results/latest.md) rounded up, with headroom for the limit */}}
{{- define "ovd.resources" -}}
{{- if .Values.resources -}}
{{ toYaml .Values.resources }}
{{- else if eq .Values.sizing.profile "demo" -}}
requests: { cpu: 500m, memory: 512Mi }
limits: { memory: 1Gi }
{{- else if eq .Values.sizing.profile "sd15-int8-512" -}}
requests: { cpu: "2", memory: 6Gi }
limits: { memory: 7Gi }
{{- else -}}
{{- fail (printf "sizing.profile %q: use demo, sd15-int8-512, or set resources" .Values.sizing.profile) -}}
{{- end -}}
{{- end -}}

{{- define "ovd.checks" -}}
{{- if lt (int .Values.server.shutdownTimeoutSeconds) (int .Values.server.maxGenerationSeconds) -}}
{{- fail (printf "server.shutdownTimeoutSeconds (%v) must be at least server.maxGenerationSeconds (%v): a generation in progress at SIGTERM would be cancelled" .Values.server.shutdownTimeoutSeconds .Values.server.maxGenerationSeconds) -}}
{{- end -}}
{{- if and .Values.autoscaling.keda.enabled .Values.autoscaling.hpa.enabled -}}
{{- fail "enable one autoscaler: autoscaling.keda or autoscaling.hpa (KEDA creates its own HPA)" -}}
{{- end -}}
{{- if and (ne .Values.model.mode "demo") (not (include "ovd.modelsClaim" .)) -}}
{{- fail (printf "model.mode=%s needs a models volume: models.existingClaim or models.create" .Values.model.mode) -}}
{{- end -}}
{{- if and (eq .Values.model.mode "path") (not .Values.model.path) -}}{{- fail "model.mode=path needs model.path" -}}{{- end -}}
{{- if and (eq .Values.model.mode "pull") (not .Values.model.source) -}}{{- fail "model.mode=pull needs model.source (a Hugging Face repository)" -}}{{- end -}}
{{- if not (has .Values.model.mode (list "demo" "path" "pull")) -}}{{- fail "model.mode: demo, path or pull" -}}{{- end -}}
{{- if and .Values.apiKey.create (not .Values.apiKey.value) -}}{{- fail "apiKey.create needs apiKey.value" -}}{{- end -}}
{{- end -}}
