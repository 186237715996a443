{{/*
Name of the shared portal-server objects.
*/}}
{{- define "serviceportal.fullname" -}}
{{- default "portal" .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The portal-server image reference.
*/}}
{{- define "serviceportal.image" -}}
{{- if hasPrefix "@" .Values.image.tag -}}
{{ .Values.image.repository }}{{ .Values.image.tag }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/*
The app.kubernetes.io/version label: the image tag, or for an image pinned by digest the digest
as a label value (sha256-<hex>, at most 63 characters), as `portalctl render` writes it.
*/}}
{{- define "serviceportal.version" -}}
{{- if hasPrefix "@" .Values.image.tag -}}
{{ .Values.image.tag | trimPrefix "@" | replace ":" "-" | trunc 63 }}
{{- else -}}
{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/*
Labels of every object. Call with (dict "root" $ "component" "server" "tenant" "<slug or empty>").
*/}}
{{- define "serviceportal.labels" -}}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/version: {{ include "serviceportal.version" .root | quote }}
portalctl.dev/group: {{ .root.Values.group | quote }}
{{- with .tenant }}
portalctl.dev/tenant: {{ . }}
{{- end }}
{{- end -}}

{{/*
Labels that select one portal-server Deployment's pods. Call with (dict "root" $ "server" "<name>").
*/}}
{{- define "serviceportal.selectorLabels" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/name: {{ .root.Chart.Name }}
portalctl.dev/server: {{ .server }}
{{- end -}}

{{/*
Name of the Deployment and Service that serve a tenant. Call with (dict "root" $ "slug" "<slug>" "tenant" <tenant values>).
*/}}
{{- define "serviceportal.serverName" -}}
{{- if eq .tenant.placement "dedicated" -}}
{{ include "serviceportal.fullname" .root }}-{{ .slug }}
{{- else -}}
{{ include "serviceportal.fullname" .root }}
{{- end -}}
{{- end -}}
