{{/* Object names: <fullname>-<part>; fullname is the release name unless fullnameOverride. */}}
{{- define "wva.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "wva.labels" -}}
app.kubernetes.io/name: wva
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "wva.selectorLabels" -}}
app.kubernetes.io/name: wva
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "wva.serviceAccountName" -}}
{{- include "wva.fullname" . }}-controller-manager
{{- end -}}

{{- define "wva.webhookService" -}}
{{- include "wva.fullname" . }}-webhook-service
{{- end -}}

{{- define "wva.servingCertificate" -}}
{{- include "wva.fullname" . }}-webhook-serving-cert
{{- end -}}

{{/* The Secret holding the webhook's serving certificate: cert-manager's, or the user's. */}}
{{- define "wva.webhookSecret" -}}
{{- if .Values.certManager.enabled -}}
{{- include "wva.fullname" . }}-webhook-server-cert
{{- else -}}
{{- required "webhook.existingSecret is required when certManager.enabled=false (a kubernetes.io/tls Secret with tls.crt and tls.key)" .Values.webhook.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "wva.mainConfigMap" -}}
{{- include "wva.fullname" . }}-variantautoscaling-config
{{- end -}}

{{- define "wva.saturationConfigMap" -}}
{{- include "wva.fullname" . }}-saturation-scaling-config
{{- end -}}

{{/* How the API server trusts the webhook: injected by cert-manager, or the given bundle. */}}
{{- define "wva.webhookCA" -}}
{{- if .Values.certManager.enabled }}
  annotations:
    cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "wva.servingCertificate" . }}
{{- end }}
{{- end -}}

{{- define "wva.clientConfig" -}}
clientConfig:
  {{- if not .root.Values.certManager.enabled }}
  caBundle: {{ required "webhook.caBundle is required when certManager.enabled=false (base64 PEM of the CA that signed the serving certificate)" .root.Values.webhook.caBundle }}
  {{- end }}
  service:
    name: {{ include "wva.webhookService" .root }}
    namespace: {{ .root.Release.Namespace }}
    path: {{ .path }}
    port: {{ .root.Values.webhook.port }}
{{- end -}}
