{{/* The namespace of every namespaced object: namespace.name, else the release's. */}}
{{- define "scw.namespace" -}}
{{- default .Release.Namespace .Values.namespace.name -}}
{{- end -}}

{{/* Labels of the watcher's objects. */}}
{{- define "scw.labels" -}}
app.kubernetes.io/name: sei-condition-watcher
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of the collector's objects. */}}
{{- define "scw.collectorLabels" -}}
app.kubernetes.io/name: otel-collector
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The watcher's OTLP endpoint: otlp.endpoint, else the bundled collector's Service. */}}
{{- define "scw.otlpEndpoint" -}}
{{- if .Values.otlp.endpoint -}}
{{- .Values.otlp.endpoint -}}
{{- else -}}
{{- $scheme := ternary "https" "http" (ne .Values.collector.tls.secretName "") -}}
{{- printf "%s://otel-collector:%s" $scheme (include "scw.otlpPort" .) -}}
{{- end -}}
{{- end -}}

{{/* The OTLP port of the protocol: 4317 for grpc, 4318 for http/protobuf. */}}
{{- define "scw.otlpPort" -}}
{{- if eq .Values.otlp.protocol "grpc" -}}4317
{{- else if eq .Values.otlp.protocol "http/protobuf" -}}4318
{{- else -}}
{{- fail (printf "otlp.protocol %q is not supported: use grpc or http/protobuf" .Values.otlp.protocol) -}}
{{- end -}}
{{- end -}}

{{/* The sei.io kinds (and further resources) the watcher reads, as RBAC rules. */}}
{{- define "scw.readRules" -}}
{{- if .Values.watch.resources }}
{{- range .Values.watch.resources }}
- apiGroups: [{{ .group | quote }}]
  resources: [{{ .plural | quote }}]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- else }}
- apiGroups: ["sei.io"]
  resources: ["seinodes", "seinetworks", "seinodetasks", "seinodetaskworkflows"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- end -}}

{{/* The Secret holding the CA the watcher trusts: otlp.tls.caSecret, else the bundled collector's TLS Secret. */}}
{{- define "scw.caSecretName" -}}
{{- if .Values.otlp.tls.caSecret.name -}}
{{- .Values.otlp.tls.caSecret.name -}}
{{- else if and .Values.collector.enabled .Values.collector.tls.secretName -}}
{{- .Values.collector.tls.secretName -}}
{{- end -}}
{{- end -}}

{{/* The port the watcher's NetworkPolicy opens for otlp.endpoint: networkPolicy.otlpPort, else the URL's port, else the scheme's (443, 80). */}}
{{- define "scw.endpointPort" -}}
{{- $u := urlParse .Values.otlp.endpoint -}}
{{- $port := regexFind "[0-9]+$" (regexFind ":[0-9]+$" $u.host) -}}
{{- if .Values.networkPolicy.otlpPort -}}{{ .Values.networkPolicy.otlpPort }}
{{- else if $port -}}{{ $port }}
{{- else if eq $u.scheme "https" -}}443
{{- else -}}80
{{- end -}}
{{- end -}}
