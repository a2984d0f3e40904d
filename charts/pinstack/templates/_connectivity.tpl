{{/*
TLS and SASL towards PostgreSQL and Kafka (values `postgres` and `kafka`; docs/kubernetes.md,
"Connectivity"). Each define takes the component's dict (root, name, c) like _component.tpl's.
The PostgreSQL CA lands where the operator's database URLs point (sslrootcert) and its
migration Jobs mount it: tests/k8s/test_charts_contract.py checks the two paths agree.
*/}}

{{- define "pinstack.connectivity.env" -}}
{{- $kafka := .root.Values.kafka -}}
- name: PINSTACK_KAFKA_SECURITY_PROTOCOL
  value: {{ $kafka.securityProtocol | quote }}
{{- if $kafka.caSecret.name }}
{{- if not (has $kafka.securityProtocol (list "SSL" "SASL_SSL")) }}
{{- fail "kafka.caSecret is only used with kafka.securityProtocol SSL or SASL_SSL" }}
{{- end }}
- name: PINSTACK_KAFKA_SSL_CA_LOCATION
  value: /var/run/secrets/pinstack/kafka-ca/ca.crt
{{- end }}
{{- if hasPrefix "SASL_" $kafka.securityProtocol }}
{{- $login := $kafka.sasl.credentialsSecret -}}
{{- if not $login.name }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.credentialsSecret.name" $kafka.securityProtocol) }}
{{- end }}
- name: PINSTACK_KAFKA_SASL_MECHANISM
  value: {{ $kafka.sasl.mechanism | quote }}
- name: PINSTACK_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $login.name }}
      key: {{ $login.usernameKey }}
- name: PINSTACK_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $login.name }}
      key: {{ $login.passwordKey }}
{{- end }}
{{- end -}}

{{- define "pinstack.connectivity.postgresMounts" -}}
{{- if and .c.database .root.Values.postgres.caSecret.name }}
- name: postgres-ca
  mountPath: /var/run/secrets/pinstack/postgres-ca
  readOnly: true
{{- end }}
{{- end -}}

{{- define "pinstack.connectivity.mounts" -}}
{{- include "pinstack.connectivity.postgresMounts" . }}
{{- if .root.Values.kafka.caSecret.name }}
- name: kafka-ca
  mountPath: /var/run/secrets/pinstack/kafka-ca
  readOnly: true
{{- end }}
{{- end -}}

{{- define "pinstack.connectivity.volumes" -}}
{{- with .root.Values.postgres.caSecret }}
{{- if and $.c.database .name }}
- name: postgres-ca
  secret:
    secretName: {{ .name }}
    defaultMode: 0444
    items:
      - key: {{ .key }}
        path: ca.crt
{{- end }}
{{- end }}
{{- with .root.Values.kafka.caSecret }}
{{- if .name }}
- name: kafka-ca
  secret:
    secretName: {{ .name }}
    defaultMode: 0444
    items:
      - key: {{ .key }}
        path: ca.crt
{{- end }}
{{- end }}
{{- end -}}
