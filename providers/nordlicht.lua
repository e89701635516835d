-- Nordlicht Stadtwerke: no API at all. Switch requests go by email to their desk; their
-- answer comes back through an operator (a task), not through Spine.
return {
  name = "nordlicht",
  channels = { "email" },

  email = {
    submit_switch = function(p, args)
      if not args.meter_point then error(p.rejected("a switch needs a meter point")) end
      p.email.send {
        to = p.config.desk,
        subject = "Lieferantenwechsel " .. args.meter_point,
        body = p.render("switch_request", {
          meter_point = args.meter_point,
          contract_id = args.contract_id,
          requested_start = args.requested_start or "nächstmöglich",
          reference = p.idempotency_key,
        }),
      }
      return { reference = "email:" .. p.idempotency_key }
    end,
  },
}
