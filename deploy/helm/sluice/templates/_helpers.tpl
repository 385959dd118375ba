{{/* Chart name, truncated to the 63 characters Kubernetes names allow. */}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret mounted as $CREDENTIALS_DIRECTORY, or "" when there is none. */}}
{{- define "sluice.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else if and .Values.secrets.create .Values.secrets.data }}
{{- include "sluice.fullname" . }}
{{- end }}
{{- end }}

{{/* Labels of the pods that are not sluice itself (the config check, helm test): without
     app.kubernetes.io/name they never match the Service's or the Deployment's selector. */}}
{{- define "sluice.auxLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* routes.yaml as the pod reads it. `config` is the whole file and replaces the chart's
     example (files/routes.default.yaml) rather than merging with it: a string is taken byte
     for byte (`--set-file config=routes.yaml`, so error lines match your file), a map is
     written out with toYaml. */}}
{{- define "sluice.routes" -}}
{{- if kindIs "string" .Values.config }}
{{- .Values.config }}
{{- else if .Values.config }}
{{- toYaml .Values.config }}
{{- else }}
{{- .Files.Get "files/routes.default.yaml" }}
{{- end }}
{{- end }}

{{/* The `admin` section of routes.yaml, as a dict (empty when absent or unreadable; an
     unreadable file is reported by the config check). */}}
{{- define "sluice.adminConfig" -}}
{{- $config := include "sluice.routes" . | fromYaml }}
{{- $admin := get $config "admin" }}
{{- if kindIs "map" $admin }}
{{- toYaml $admin }}
{{- end }}
{{- end }}

{{/* "true" when the admin server speaks HTTPS (`admin.tls` with a certificate). Refuses
     `admin.tls.ca_file` with verification: then every client must present a certificate,
     and the kubelet's probes cannot. */}}
{{- define "sluice.adminTls" -}}
{{- $admin := include "sluice.adminConfig" . | fromYaml }}
{{- $tls := get $admin "tls" }}
{{- if and (kindIs "map" $tls) (get $tls "cert_file") }}
{{- if and (get $tls "ca_file") (ne (toString (get $tls "verify")) "false") }}
{{- fail "config.admin.tls.ca_file asks every client of the admin port for a certificate, which the kubelet's probes cannot present; leave ca_file out (or set verify: false) and restrict the port with networkPolicy instead" }}
{{- end }}
{{- print "true" }}
{{- end }}
{{- end }}

{{/* The credential name NAME when `admin.token` is "${credential:NAME}", "" when there is no
     token; fails for a token in any other form while the ServiceMonitor needs to read it. */}}
{{- define "sluice.adminTokenKey" -}}
{{- $admin := include "sluice.adminConfig" . | fromYaml }}
{{- $token := toString (get $admin "token") }}
{{- if $token }}
{{- $m := regexFind "^\\$\\{credential:[A-Za-z0-9._-]+\\}$" $token }}
{{- if $m }}
{{- trimSuffix "}" (trimPrefix "${credential:" $m) }}
{{- else if .Values.metrics.serviceMonitor.enabled }}
{{- fail "config.admin.token must be written ${credential:NAME} (NAME a key of the chart's Secret) so that the ServiceMonitor can send it" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The probes' and the helm test's scheme. */}}
{{- define "sluice.adminScheme" -}}
{{- if include "sluice.adminTls" . }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{/* What the sluice container and the config check share, so the check sees the same files
     and variables: args (dict "root" $ "secretName" NAME-or-""). */}}
{{- define "sluice.env" -}}
{{- if or .secretName .root.Values.extraEnv }}
env:
  {{- if .secretName }}
  - name: CREDENTIALS_DIRECTORY
    value: /run/secrets/sluice
  {{- end }}
  {{- with .root.Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
{{- end }}

{{- define "sluice.volumeMounts" -}}
- name: config
  mountPath: /etc/sluice
  readOnly: true
- name: state
  mountPath: /var/lib/sluice
- name: tmp
  mountPath: /tmp
{{- if .secretName }}
- name: secrets
  mountPath: /run/secrets/sluice
  readOnly: true
{{- end }}
{{- with .root.Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "sluice.commonVolumes" -}}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: 16Mi
{{- if .secretName }}
- name: secrets
  secret:
    secretName: {{ .secretName }}
    defaultMode: 0400
{{- end }}
{{- with .root.Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}
