{{/* Names, labels and small helpers shared by every template of the chart. */}}

{{- define "pinstack.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pinstack.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of one component's objects: <fullname>-<component>. Arg: dict root name. */}}
{{- define "pinstack.componentName" -}}
{{- printf "%s-%s" (include "pinstack.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pinstack.chartLabel" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. Arg: the root context. */}}
{{- define "pinstack.labels" -}}
helm.sh/chart: {{ include "pinstack.chartLabel" . }}
app.kubernetes.io/name: {{ include "pinstack.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pinstack
pinstack.io/stack: {{ .Values.stackName }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component. Arg: dict root name. */}}
{{- define "pinstack.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pinstack.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* All labels of one component's objects. Arg: dict root name. */}}
{{- define "pinstack.componentLabels" -}}
{{ include "pinstack.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "pinstack.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pinstack.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "pinstack.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Operator-provisioned Secret names (values win over the operator's naming). */}}
{{- define "pinstack.databaseSecret" -}}
{{- .root.Values.secrets.database.nameTemplate | replace "{stack}" .root.Values.stackName | replace "{component}" .name -}}
{{- end -}}

{{- define "pinstack.signingKeySecret" -}}
{{- default (printf "%s-jwt-signing-key" .Values.stackName) .Values.secrets.signingKey.name -}}
{{- end -}}

{{- define "pinstack.internalTokenSecret" -}}
{{- default (printf "%s-internal-token" .Values.stackName) .Values.secrets.internalToken.name -}}
{{- end -}}

{{/* A duration of the schema's form (e.g. 250ms, 30s, 5m, 1h) in milliseconds. */}}
{{- define "pinstack.durationMs" -}}
{{- $number := regexFind "^[0-9]+" . | int -}}
{{- $unit := regexFind "(ms|s|m|h)$" . -}}
{{- mul $number (get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit) -}}
{{- end -}}

{{/* True when Prometheus Operator objects should be rendered. */}}
{{- define "pinstack.monitoringAvailable" -}}
{{- if or .Values.monitoring.force (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") -}}
true
{{- end -}}
{{- end -}}
