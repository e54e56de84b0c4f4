"""Pure Asterisk text models and rules: the conf parser, extensions.conf, pjsip.conf, queues.conf,
res_parking.conf. No I/O, no domain, no store."""
