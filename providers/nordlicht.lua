-- Nordlicht Stadtwerke: no API at all. Switch requests, terminations and their withdrawal go by
-- email to their desk, in German (subjects in ASCII: the mail client sends headers as they
-- are). Their answer comes back through an operator (`spine signal ID
-- provider.switch_confirmed` / `provider.termination_confirmed`), not through Spine.
--
-- Operations (each returns {reference = "email:<idempotency key>"}, the reference the desk
-- quotes back):
--   submit_switch{contract_id, meter_point, requested_start?}
--   cancel_switch{reference, reason?}
--   submit_termination{contract_id, meter_point?, termination_date?, reason?}
--   withdraw_termination{reference, reason?}

local function mail(p, subject, template, vars)
  vars.reference = p.idempotency_key
  p.email.send { to = p.config.desk, subject = subject, body = p.render(template, vars) }
  return "email:" .. p.idempotency_key
end

local function needs_reference(p, args, operation)
  if type(args.reference) ~= "string" then
    error(p.rejected(operation .. " needs the reference of the request"))
  end
  return args.reference
end

return {
  name = "nordlicht",
  channels = { "email" },

  email = {
    submit_switch = function(p, args)
      if not args.meter_point then error(p.rejected("a switch needs a meter point")) end
      local ref = mail(p, "Lieferantenwechsel " .. args.meter_point, "switch_request", {
        meter_point = args.meter_point,
        contract_id = args.contract_id,
        requested_start = args.requested_start or "nächstmöglich",
      })
      return { reference = ref }
    end,

    cancel_switch = function(p, args)
      local of = needs_reference(p, args, "cancel_switch")
      mail(p, "Storno Lieferantenwechsel " .. of, "nordlicht_switch_cancellation",
           { of = of, reason = args.reason or "auf Wunsch des Kunden" })
      return { reference = of, status = "cancelled" }
    end,

    submit_termination = function(p, args)
      local ref = mail(p, "Kuendigung " .. args.contract_id, "nordlicht_termination_request", {
        contract_id = args.contract_id,
        meter_point = args.meter_point or "siehe Vertrag",
        termination_date = args.termination_date or "nächstmöglich",
        reason = args.reason or "Kündigung des Kunden",
      })
      return { reference = ref }
    end,

    withdraw_termination = function(p, args)
      local of = needs_reference(p, args, "withdraw_termination")
      mail(p, "Ruecknahme der Kuendigung " .. of, "nordlicht_termination_withdrawal",
           { of = of, reason = args.reason or "auf Wunsch des Kunden" })
      return { reference = of, status = "cancelled" }
    end,
  },
}
