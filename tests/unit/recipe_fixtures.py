"""Small master recipes shared by the recipe diff and BatchML export tests.

``SMALL_RECIPE`` exercises every part of the format (chain of identity, timers, a condition,
inputs of each kind with limits, calculations, materials, equipment, identity checks, the three
orderings); ``SPECIAL_CHARACTERS_RECIPE`` carries text that XML must escape and non-ASCII units.
"""

from __future__ import annotations

SMALL_RECIPE = """\
format: gmp-mes/recipe/1
recipe_code: TEST-CART
version: 1
title: Test CAR-T process
description: |
  A small autologous CAR-T recipe for unit tests.
  Not for manufacturing.
product:
  code: TEST-CD19
  name: Test anti-CD19 CAR-T cells
  modality: autologous_cell
expected_duration: 10 d
change_reason: First version, written for the unit tests.
chain_of_identity:
  din:
    label: Donation identification number
    kind: isbt128_din
  patient_id:
    label: Patient ID
    kind: identifier
    pattern: "^P[0-9]{6}$"
  collection_date:
    label: Collection date
    kind: date
unit_procedures:
  - id: receipt
    name: Receipt and chain of identity
    description: Receive the apheresis bag and confirm whose cells they are.
    operations:
      - id: receive
        name: Receive
        phases:
          - id: check_label
            name: Check bag label
            instructions: Scan the DIN on the apheresis bag label.
            identity_checks:
              - id: bag_din
                label: Bag DIN
                matches: din
          - id: count_cells
            name: Count cells
            instructions: |
              Mix the bag gently by inversion.
              Take a 0.5 mL sample with a sterile syringe.
              Count on the automated cell counter.
            verify: supervisor
            inputs:
              viable_conc:
                label: Viable cell concentration
                type: number
                unit: ×10^6 cells/mL
                decimals: 2
                action_low: 0.5
              viability:
                label: Viability
                type: number
                unit: "%"
                decimals: 1
                target: 95
                alert_low: 85
                action_low: 80
              volume:
                label: Bag volume
                type: number
                unit: mL
                action_low: 10
                action_high: 300
            calculations:
              total_viable:
                label: Total viable cells
                expression: viable_conc * volume
                unit: ×10^6 cells
                decimals: 1
                action_low: 100
            equipment:
              - class: cell_counter
                label: Automated cell counter
      - id: qc_review
        name: Review receipt
        phases:
          - id: decide
            name: Decide to proceed
            instructions: Review the count and decide.
            perform: supervisor
            inputs:
              decision:
                label: Decision
                type: choice
                options: [Proceed, Hold]
              comment:
                label: Comment
                type: text
                required: false
                help: Why the batch is held, if it is.
  - id: manufacture
    name: Manufacture
    operations:
      - id: transduce
        name: Transduce
        phases:
          - id: thaw_vector
            name: Thaw vector
            instructions: Thaw the vector vial in the water bath.
            when:
              input: decide.decision
              equals: Proceed
            materials:
              - code: VEC-CD19
                name: Anti-CD19 lentiviral vector
                quantity: 1
                unit: vial
            equipment:
              - class: water_bath
          - id: add_vector
            name: Add vector
            instructions: Add the thawed vector to the culture bag.
            verify: supervisor
            timers:
              - after: thaw_vector
                max: 30 min
            inputs:
              vector_lot:
                label: Vector lot
                type: barcode
                pattern: "^LOT-[0-9]+$"
              volume_added:
                label: Volume added
                type: number
                unit: mL
                decimals: 1
                target: 2
                action_low: 1.8
                action_high: 2.2
      - id: expand
        name: Expand
        ordering: any_order
        phases:
          - id: feed
            name: Feed culture
            instructions: Add 100 mL of fresh medium.
            timers:
              - after: add_vector
                min: 20 h
                max: 48 h
            materials:
              - code: MED-TEXMACS
                name: Culture medium
                quantity: 100
                unit: mL
          - id: sample
            name: Sample culture
            instructions: Take a 1 mL sample for the in-process count.
            inputs:
              contaminated:
                label: Visible contamination
                type: yes_no
              sampled_at:
                label: Sampled at
                type: datetime
      - id: harvest
        name: Harvest
        ordering: parallel
        phases:
          - id: wash
            name: Wash cells
            instructions: Wash the cells twice.
            perform: operator
            verify: qa
            inputs:
              wash_cycles:
                label: Wash cycles
                type: integer
                target: 2
                action_low: 2
                action_high: 3
          - id: label_bag
            name: Label final bag
            instructions: Print and apply the final product label.
            identity_checks:
              - id: final_patient
                label: Final bag patient ID
                matches: patient_id
"""

SPECIAL_CHARACTERS_RECIPE = """\
format: gmp-mes/recipe/1
recipe_code: TEST-XML-ESCAPE
version: 3
title: "Cells & <media> \\"quoted\\" — 37 °C, 5 µL, 10 × 10^6 cells"
description: "Line one & <two>\\nLine 'three' — µ °C ×"
product:
  code: TEST-ESCAPE
  name: Product with 'apostrophes' & "quotes"
  modality: other
change_reason: Checks that <, >, & and quotes survive the export.
chain_of_identity:
  batch_ref:
    label: Batch <reference> & "number"
    kind: identifier
    pattern: "^[A-Z]{2}<[0-9]+>$"
unit_procedures:
  - id: prepare
    name: Prepare <buffers> & media
    operations:
      - id: mix
        name: Mix "gently"
        phases:
          - id: warm
            name: Warm to 37 °C & mix
            instructions: |
              Warm the buffer to 37 °C (± 1 °C) & check the <seal>.
              Add 5 µL of reagent "A" — then 10 × 10^6 cells.
            inputs:
              temperature:
                label: Temperature <measured> & "recorded"
                type: number
                unit: °C
                decimals: 1
                target: 37
                alert_low: 36.5
                alert_high: 37.5
                action_low: 36
                action_high: 38
                help: Read the probe & write what it says, in °C.
              reagent:
                label: Reagent µL
                type: number
                unit: µL
                action_high: 5.5
              cells:
                label: Cells added
                type: number
                unit: ×10^6 cells
                action_low: 8
              grade:
                label: Grade
                type: choice
                options: ["A & B", "<C>", "\\"D\\""]
            calculations:
              per_ul:
                label: Cells per µL × 1
                expression: cells / reagent
                unit: ×10^6 cells
            materials:
              - code: BUF-37
                name: Buffer "37" & salts <sterile>
                quantity: 12.5
                unit: mL
"""

FIXTURE_RECIPES = {
    "small_recipe": SMALL_RECIPE,
    "special_characters_recipe": SPECIAL_CHARACTERS_RECIPE,
}
