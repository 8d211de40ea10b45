"""A Vietnamese plan document (text, DOCX, text PDF) → a commented YAML draft plan.

The steps, one module each: ``sources`` reads the file into numbered lines,
``normalise`` joins the lines a PDF broke into paragraphs, ``header``, ``basis``,
``sections``, ``phrases`` and ``closing`` read the parts of the document, ``units``
matches names against the registry, ``draft`` writes the YAML with ``# KIỂM TRA:``
comments and ``report`` lists every line not understood or not sure.
"""
